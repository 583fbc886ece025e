"""Configuration layering (environment > .env > defaults) and start-up validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.officeflow.settings import ConfigurationError, load_settings


@pytest.fixture
def isolated(settings_env, tmp_path):
    """No OFFICEFLOW_*/JWT variables from the harness; a private .env file."""
    import os

    for name in list(os.environ):
        if name.startswith("OFFICEFLOW_") or name == "AIRFLOW__API_AUTH__JWT_SECRET":
            settings_env.delenv(name)
    env_file = tmp_path / ".env"
    settings_env.setenv("OFFICEFLOW_ENV_FILE", str(env_file))
    return env_file


def _load(env_file: Path):
    from include.officeflow.settings import Settings

    return load_settings(_env_file=str(env_file)) if env_file.exists() else Settings(_env_file=None)


def test_defaults_are_the_embedded_dev_setup(isolated):
    settings = _load(isolated)
    assert settings.env == "dev"
    assert settings.db_url.startswith("sqlite:///") and settings.db_url.endswith("/officeflow.db")
    assert settings.mailbox_dir == settings.home / "mailbox"
    assert settings.webhook_replay_window_seconds == 300
    assert settings.bamboohr_webhook_key is None


def test_dotenv_overrides_defaults_and_environment_overrides_dotenv(isolated, settings_env):
    isolated.write_text("OFFICEFLOW_ONBOARDING_DAG_ID=from_dotenv\nOFFICEFLOW_SMTP_PORT=2600\n")
    assert _load(isolated).onboarding_dag_id == "from_dotenv"
    settings_env.setenv("OFFICEFLOW_ONBOARDING_DAG_ID", "from_env")
    settings = _load(isolated)
    assert settings.onboarding_dag_id == "from_env"
    assert settings.smtp_port == 2600


def test_invalid_values_fail_with_the_variable_named(isolated, settings_env):
    settings_env.setenv("OFFICEFLOW_SMTP_PORT", "not-a-port")
    settings_env.setenv("OFFICEFLOW_ENV", "staging")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "OFFICEFLOW_SMTP_PORT" in message and "OFFICEFLOW_ENV" in message


def test_production_refuses_a_short_jwt_secret(isolated, settings_env):
    settings_env.setenv("OFFICEFLOW_ENV", "production")
    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql://db/officeflow")
    settings_env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "x" * 31)
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_settings()


def test_production_refuses_a_missing_secret_and_sqlite(isolated, settings_env):
    settings_env.setenv("OFFICEFLOW_ENV", "production")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "JWT_SECRET" in str(info.value) and "SQLite" in str(info.value)


def test_production_accepts_a_strong_secret(isolated, settings_env):
    settings_env.setenv("OFFICEFLOW_ENV", "production")
    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql://db/officeflow")
    settings_env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "x" * 32)
    settings = load_settings()
    assert settings.jwt_secret is not None and "x" * 32 not in repr(settings)


def test_the_relay_lease_must_outlast_the_delivery_timeout(isolated, settings_env):
    """A lease ending while Kafka may still acknowledge would let a second relay publish the same rows."""
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_DELIVERY_TIMEOUT_SECONDS", "30")
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS", "30")
    with pytest.raises(ConfigurationError, match="OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS must exceed"):
        load_settings()
    settings_env.setenv("OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS", "31")
    assert load_settings().events_relay_lease_seconds == 31


def test_a_load_that_began_before_a_clear_is_never_cached(monkeypatch):
    """A background thread that read the environment just before it changed must not put the old
    settings back into the cache after the change cleared it (the cause of a flaky CI run)."""
    import threading

    from include.officeflow import settings as module

    cache = module._LoadedOnce()
    started, release = threading.Event(), threading.Event()
    real_load = module.load_settings

    def slow_first_load(**overrides):
        loaded = real_load(**overrides)
        if not started.is_set():
            started.set()
            release.wait(5)
        return loaded

    monkeypatch.setattr(module, "load_settings", slow_first_load)
    monkeypatch.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", "[]")
    old: list[module.Settings] = []
    thread = threading.Thread(target=lambda: old.append(cache()))
    thread.start()
    assert started.wait(5)
    monkeypatch.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    cache.cache_clear()
    release.set()
    thread.join(5)

    assert old[0].auth_trusted_proxies == []
    assert cache().auth_trusted_proxies == ["10.0.0.0/8"]
    assert cache() is cache()
