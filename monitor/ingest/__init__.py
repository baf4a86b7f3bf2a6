"""Ingest: watch folders, read dated articles once each, match them, record the outcome."""
