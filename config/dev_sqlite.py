"""Airflow's metadata DB as a SQLite file in dev mode (``./run.sh dev``).

The api-server, scheduler, dag-processor, triggerer and every task write to one file, and SQLite lets
one writer in at a time. Its default busy timeout (5 s) turns a moment of contention, e.g. a person
pressing Trigger while a few onboardings run, into a 500; waiting up to 30 s turns it into a short
pause. ``run.sh`` points ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS`` here for SQLite only.
"""

CONNECT_ARGS = {"timeout": 30}
