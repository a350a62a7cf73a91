"""The learned model of a tenant: features, training, compiling into the scoring SQL, the services."""
