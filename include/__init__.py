"""Shared OfficeFlow core (settings, store, templating) and assets; on PYTHONPATH via the repo root."""
