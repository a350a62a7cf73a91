"""Models arrive with their issue; the app is installed so migrations and admin find it."""
