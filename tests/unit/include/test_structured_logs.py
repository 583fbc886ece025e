"""Structured log lines: the fields, the correlation id rules, and secrets redacted in every shape they come in."""

from __future__ import annotations

import io
import json
import logging
import re
import tomllib

import pytest
import structlog

from include.officeflow import __version__, correlation
from include.officeflow.log_context import install_task_redaction, task_log_fields
from include.officeflow.redaction import RedactSecrets, redact_event, redact_text, redact_value
from include.officeflow.settings import load_settings
from include.officeflow.structured_logs import FIELDS, JsonFormatter, bind, bound, context_fields, static_fields
from tests.harness.environment import REPO_ROOT

SECRETS = {
    "Authorization: Bearer abc.def-123456": "abc.def-123456",
    "headers={'authorization': 'Basic dXNlcjpwYXNz', 'x-bamboohr-signature': 'deadbeef99'}": "dXNlcjpwYXNz",
    '{"password": "hunter2-hunter2", "name": "Ada"}': "hunter2-hunter2",
    "GET https://api.example.com/v1?api_key=SECRETKEY123&x=1": "SECRETKEY123",
    "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw rotated": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "could not connect to postgresql://officeflow:pa55word@db:5432/x": "pa55word",
    "slack said token=xoxb-1234-5678-abcdef": "xoxb-1234-5678-abcdef",
    "X-Hub-Signature-256: sha256=abcdef0123": "abcdef0123",
    "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 refused": "abcdefghijklmnopqrstuvwxyz012345",
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U": "dozjgNry",
    "client_secret: s3cr3t-value; OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY=foo-bar-baz": "s3cr3t-value",
}


@pytest.mark.parametrize("line", SECRETS)
def test_every_secret_shape_is_redacted(line):
    redacted = redact_text(line)
    assert SECRETS[line] not in redacted and "***" in redacted


def test_ids_and_ordinary_words_survive_redaction():
    line = "correlationId=abc-123 organizationId=acme max_tokens=200 tokens=5 event=employee.created run=manual__1"
    assert redact_text(line) == line


def test_structured_values_mask_sensitive_keys_at_any_depth():
    value = {"Authorization": "x", "nested": {"api_key": "k", "ok": "Bearer zzzzzz"}, "list": ["whsec_abc123"]}
    assert redact_value(value) == {"Authorization": "***", "nested": {"api_key": "***", "ok": "Bearer ***"},
                                   "list": ["whsec_***"]}
    event = redact_event(None, "info", {"event": "sent with token=abcdef", "password": "p", "count": 3})
    assert event == {"event": "sent with token=***", "password": "***", "count": 3}


def test_secrets_registered_with_airflow_masker_are_redacted_too():
    from airflow.sdk.log import mask_secret

    mask_secret("registered-but-shapeless-0815")
    assert redact_text("value registered-but-shapeless-0815 here") == "value *** here"


def test_the_filter_redacts_message_arguments_and_traceback():
    record = None
    try:
        raise ValueError("refused password=letmein99")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call with %s", ("Bearer tok-123456",),
                                   sys.exc_info())
    assert RedactSecrets().filter(record)
    assert record.getMessage().startswith("call with Bearer ***\nTraceback")
    assert "letmein99" not in record.getMessage() and "password=***" in record.getMessage()
    assert record.exc_info is None and record.exc_text is None


def test_a_traceback_without_secrets_is_left_to_the_formatters():
    try:
        raise ValueError("nothing secret")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "failed" and record.exc_info is not None


@pytest.mark.parametrize("value", ["abc", "6f1c2b9e-1d2c-4a5b-9c8d-0123456789ab", "req_01HZX:1.2", "a" * 64])
def test_valid_correlation_ids_are_kept(value):
    assert correlation.correlation_id_from(value) == value


@pytest.mark.parametrize("value", [None, "", "a" * 65, "has space", "new\nline", "quote\"d", "-leading", "ünï"])
def test_invalid_correlation_ids_are_replaced_by_a_new_uuid(value):
    replaced = correlation.correlation_id_from(value)
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert replaced != value and re.fullmatch(uuid4, replaced)


def test_a_json_line_has_every_field_and_the_bound_ids():
    formatter = JsonFormatter(load_settings(env="test", service_name="officeflow-test", version="1.2.3"))
    with bound(correlationId="cid-7", organizationId="acme"):
        bind(workflowId="employee_onboarding")
        record = logging.LogRecord("plugins.x", logging.WARNING, __file__, 1, "sent %s", ("Bearer tok-123456",), None)
        record.route = "/webhooks/{endpoint_id}"
        line = json.loads(formatter.format(record))
    assert list(line)[:len(FIELDS)] == list(FIELDS)
    assert line["level"] == "warning" and line["message"] == "sent Bearer ***"
    assert (line["service"], line["version"], line["environment"]) == ("officeflow-test", "1.2.3", "test")
    assert (line["correlationId"], line["organizationId"], line["workflowId"]) == ("cid-7", "acme",
                                                                                   "employee_onboarding")
    assert line["route"] == "/webhooks/{endpoint_id}" and line["logger"] == "plugins.x"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    structlog.contextvars.unbind_contextvars("workflowId")
    assert context_fields() == {"correlationId": None, "workflowId": None, "organizationId": None}


def test_version_defaults_to_the_release_in_pyproject():
    release = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == release == static_fields(load_settings(env="test"))["version"]


def test_log_format_defaults_to_json_only_in_production():
    assert load_settings(env="dev").log_format == "text"
    assert load_settings(env="test").log_format == "text"
    secret = "x" * 40
    production = load_settings(env="production", jwt_secret=secret, db_url="postgresql://h/db")
    assert production.log_format == "json"
    assert load_settings(env="dev", log_format="json").log_format == "json"


class _Run:
    dag_id = "employee_onboarding"
    conf = {"organization_id": "acme", "correlation_id": "cid-42"}


def test_task_fields_come_from_the_run_and_redaction_joins_structlog():
    fields = task_log_fields({"dag_run": _Run(), "params": {}})
    assert {k: fields[k] for k in ("correlationId", "organizationId", "workflowId")} == {
        "correlationId": "cid-42", "organizationId": "acme", "workflowId": "employee_onboarding"}
    assert {"service", "version", "environment"} <= set(fields)
    previous = structlog.get_config()
    out = io.StringIO()
    try:
        structlog.configure(processors=[structlog.contextvars.merge_contextvars, structlog.processors.JSONRenderer()],
                            logger_factory=structlog.PrintLoggerFactory(out), cache_logger_on_first_use=False)
        install_task_redaction()
        install_task_redaction()  # idempotent
        assert structlog.get_config()["processors"].count(redact_event) == 1
        with bound(**fields):
            structlog.get_logger("task").info("calling with api_key=topsecret123", authorization="Bearer abcdef")
    finally:
        structlog.configure(**previous)
        for handler in logging.getLogger().handlers:
            for f in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
                handler.removeFilter(f)
    line = json.loads(out.getvalue())
    assert line["event"] == "calling with api_key=***" and line["authorization"] == "***"
    assert line["correlationId"] == "cid-42" and "topsecret123" not in out.getvalue()
