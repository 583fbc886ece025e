"""The cross-site request guard: a state change carried by the UI's session cookie must come from this
server's own pages; Bearer clients and reads are unaffected."""

from __future__ import annotations

import pytest

from tests.harness.airflow_tools import api_token
from tests.harness.endpoints import API, DAG, GENERIC_MAPPING
from tests.harness.gateway_checks import assert_error

BODY = {"name": "HR feed", "adapter": "generic", "target_dag_id": DAG, "mapping": GENERIC_MAPPING}


@pytest.fixture
def session_cookie(client):
    """The admin's JWT as the UI keeps it: in the ``_token`` cookie, no Authorization header."""
    client.cookies.set("_token", api_token("admin"))
    yield
    client.cookies.clear()


def endpoint_names(client, admin) -> list[str]:
    return [e["name"] for e in client.get(API, headers=admin).json()["endpoints"]]


@pytest.mark.parametrize("headers", [
    {},  # no Origin, no Referer
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://intranet.example/page"},
    {"Origin": "http://testserver.evil.example"},
], ids=["no-origin", "foreign-origin", "opaque-origin", "foreign-referer", "lookalike-host"])
def test_cookie_session_post_from_elsewhere_is_refused_and_changes_nothing(client, admin, session_cookie, headers):
    before = endpoint_names(client, admin)
    assert_error(client.post(API, json=BODY, headers=headers), 403, "cross_origin_request")
    assert_error(client.delete(f"{API}/does-not-matter", headers=headers), 403, "cross_origin_request")
    assert endpoint_names(client, admin) == before


@pytest.mark.parametrize("headers", [
    {"Origin": "http://testserver"},
    {"Referer": "http://testserver/officeflow/admin/endpoints"},
    {"Origin": "https://officeflow.example.com", "X-Forwarded-Host": "officeflow.example.com"},
], ids=["origin", "referer", "behind-proxy"])
def test_cookie_session_post_from_own_pages_works(client, session_cookie, headers):
    created = client.post(API, json=BODY, headers=headers)
    assert created.status_code == 201, created.text


def test_reads_with_the_cookie_need_no_origin(client, session_cookie):
    assert client.get(API).status_code == 200


def test_bearer_clients_are_not_affected_by_origin(client, admin):
    created = client.post(API, json=BODY, headers={**admin, "Origin": "https://tooling.example"})
    assert created.status_code == 201, created.text

