"""Airflow configuration as Python (``config.*`` import paths in ``AIRFLOW__*`` variables)."""
