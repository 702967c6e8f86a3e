"""Alembic environment and schema versions for the store; `captionbot migrate` applies them."""
