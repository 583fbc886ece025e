"""OfficeFlow's management API (``/officeflow/api/v1``), Airflow-authenticated."""

# The largest values PostgreSQL's columns hold: a bigger offset, id or version is refused (422) by the route's
# parameter, not passed on to fail in the database (500).
MAX_BIGINT = 2**63 - 1  # BIGINT (row offsets, audit log ids)
MAX_INT = 2**31 - 1  # INTEGER (version numbers)
