"""Declarative workflows behind ``/officeflow/api/v1/workflows``: the API contract and the service."""
