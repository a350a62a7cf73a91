"""The database layer of the platform: the PostgreSQL backend that carries the tenant into every
transaction (row-level security), the two roles (owner, app) and the policy migration operation."""
