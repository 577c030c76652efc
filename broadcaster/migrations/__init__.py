"""Alembic migrations of the panel's database (see README in this directory and broadcaster/db.py)."""
