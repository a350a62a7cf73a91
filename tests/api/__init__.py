"""API tests: signals, leads, OpenAPI schema."""
