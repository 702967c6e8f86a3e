"""The database: SQLAlchemy models, engine and sessions, and the queries the service needs."""
