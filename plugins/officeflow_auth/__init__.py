"""OfficeFlow's authentication inside Airflow: the FAB auth manager extended with TOTP MFA and the
password policy, OfficeFlow's roles kept in sync, login throttling and audit as root middlewares."""
