"""OfficeFlow's authentication and authorization rules, independent of Airflow's auth manager: the
permission model (resources, roles, workflow access), the password policy, login throttling, TOTP MFA,
refresh tokens and organization membership. ``plugins/officeflow_auth`` wires them into Airflow."""
