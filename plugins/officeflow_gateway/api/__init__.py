"""OfficeFlow's management API (``/officeflow/api/v1``), Airflow-authenticated."""
