"""Campaign metadata and API keys: Postgres in production, SQLite locally, one code path."""
