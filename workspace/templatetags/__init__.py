"""Template tags and filters of the workspace pages."""
