"""Airflow plugins folder; importable as ``plugins`` because the repository root is on PYTHONPATH."""
