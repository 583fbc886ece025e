"""Local stand-ins for the SaaS APIs OfficeFlow calls, for dev mode and the tests (real protocols, local state).

Dev and test tooling, not product: it lives outside ``include/`` (which ships to every Airflow worker), is
kept out of the image (``.dockerignore``) and imports nothing from OfficeFlow (``include``, ``operators``,
``plugins``, ``dags``). One package per emulated vendor; see sandbox/README.md.
"""
