"""Airflow listeners of the OfficeFlow plugin (registered in ``plugins/officeflow_plugin.py``)."""
