"""Alembic revision scripts (a package, so that installed copies of news-monitor carry them)."""
