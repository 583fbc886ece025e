""".env.example against what reads it: every OfficeFlow setting (its environment name, as pydantic-settings derives
it) and every variable docker-compose.yaml interpolates is listed; nothing OFFICEFLOW_* is listed that nothing reads;
secrets are placeholders."""

from __future__ import annotations

import re

from pydantic import AliasChoices

from include.officeflow.settings import Settings
from tests.harness.environment import REPO_ROOT

ENV_EXAMPLE = REPO_ROOT / ".env.example"
LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
SECRET = re.compile(r"PASSWORD$|SECRET$|SECRET_KEY$|FERNET_KEY$|WEBHOOK_KEY$|JWT_SECRET$")


def listed(include_commented: bool = True) -> dict[str, str]:
    """Variable -> value of every `NAME=value` line (also `# NAME=value`, a documented default)."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = LINE.match(line)
        if match and (include_commented or not match[1]):
            found[match[2]] = match[3]
    return found


def setting_env_names() -> dict[str, list[str]]:
    """Field -> the environment names pydantic-settings reads it from: its validation aliases when it has any,
    else the prefix + the field name."""
    prefix = Settings.model_config.get("env_prefix", "")
    names = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names[field] = [str(choice) for choice in alias.choices]
        elif isinstance(alias, str):
            names[field] = [alias]
        else:
            names[field] = [f"{prefix}{field}".upper()]
    return names


def webserver_config_variables() -> set[str]:
    """The OFFICEFLOW_* variables config/webserver_config.py (FAB's settings: sign-in type, SSO, LDAP) reads."""
    return set(re.findall(r"OFFICEFLOW_[A-Z0-9_]+", (REPO_ROOT / "config" / "webserver_config.py").read_text()))


def compose_variables() -> set[str]:
    text = (REPO_ROOT / "docker-compose.yaml").read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def test_every_setting_is_in_env_example():
    names = listed()
    missing = {field: env for field, env in setting_env_names().items() if not set(env) & set(names)}
    assert missing == {}, f"add these settings to .env.example: {missing}"


def test_no_unknown_officeflow_variable():
    known = {name for env in setting_env_names().values() for name in env}
    known |= compose_variables()
    # read outside the settings model: run.sh (dev mode, the admin's password), FAB's settings file and the
    # settings module itself
    known |= set(re.findall(r"OFFICEFLOW_[A-Z0-9_]+", (REPO_ROOT / "run.sh").read_text()))
    known |= webserver_config_variables()
    known.add("OFFICEFLOW_ENV_FILE")
    unknown = sorted(name for name in listed() if name.startswith("OFFICEFLOW_") and name not in known)
    assert unknown == [], f".env.example lists variables nothing reads: {unknown}"


def test_every_sign_in_variable_of_the_fab_settings_is_in_env_example():
    missing = sorted(webserver_config_variables() - set(listed()))
    assert missing == [], f"config/webserver_config.py reads {missing}: document them in .env.example"


def test_the_admin_password_example_meets_the_password_policy():
    """The bootstrap refuses a password that breaks the policy (and exits 2): the example must pass it, with
    the default minimum length, or a copied .env.example stops docker compose's init."""
    from include.officeflow.auth.passwords import check_password

    password = listed(include_commented=False)["OFFICEFLOW_ADMIN_PASSWORD"]
    check_password(password, username="admin", min_length=Settings.model_fields["password_min_length"].default)


def test_every_compose_variable_is_in_env_example():
    missing = sorted(compose_variables() - set(listed(include_commented=False)) - {
        # documented with their default (commented), docker-compose.yaml has the same default
        name for name in listed() if name.startswith("OFFICEFLOW_")})
    assert missing == [], f"docker-compose.yaml reads {missing}: add them to .env.example"


def test_secrets_are_placeholders_and_unique():
    active = listed(include_commented=False)
    secrets = {name: value for name, value in active.items() if SECRET.search(name)}
    assert {"POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY",
            "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY", "OFFICEFLOW_ADMIN_PASSWORD"} <= set(secrets)
    for name, value in secrets.items():
        assert value.startswith("change-me"), f"{name} must be an obvious placeholder, not a usable secret"
    assert len(set(secrets.values())) == len(secrets), "each secret has its own placeholder"


def test_lines_are_unique_and_well_formed():
    seen: list[str] = []
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f".env.example:{number} is not NAME=value: {line!r}"
        assert " #" not in match[3] or match[3].startswith("'"), f".env.example:{number}: quote values with ' #'"
        seen.append(match[2])
    assert len(seen) == len(set(seen))
