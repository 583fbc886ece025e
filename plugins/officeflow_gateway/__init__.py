"""The OfficeFlow gateway: a FastAPI app mounted in the Airflow api-server at ``/officeflow``."""
