"""Workday: a Reports-as-a-Service (RaaS) custom report of workers
(``/workday/ccx/service/customreport2/{tenant}/{owner}/{report}``, :mod:`sandbox.workday.raas`), what OfficeFlow's
reconciliation reads, and what an HR admin changes in Workday's UI (``/workday/sandbox/workers/{id}``)."""

from sandbox.workday.raas import provision_credentials, seed, service

__all__ = ["provision_credentials", "seed", "service"]
