"""Storage: the database, its schema, and the stores (quota, settings, jobs, privacy, claims)."""
