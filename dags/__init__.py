"""OfficeFlow workflows (Airflow loads each file by path; the package exists for type checking)."""
