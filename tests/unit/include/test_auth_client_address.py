"""The client's address behind proxies (plugins/officeflow_auth/client_address.py): X-Forwarded-For is believed
only from OFFICEFLOW_AUTH_TRUSTED_PROXIES, walked from the right while the hops are trusted proxies."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from plugins.officeflow_auth.client_address import client_address, from_scope


@pytest.fixture
def proxies(settings_env):
    settings_env.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", '["10.0.0.0/8", "fd00::/8"]')


def test_without_trusted_proxies_the_peer_is_the_client(settings_env):
    settings_env.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", "[]")
    assert from_scope("10.1.2.3", "203.0.113.9") == "10.1.2.3"
    assert from_scope("198.51.100.7", None) == "198.51.100.7"


@pytest.mark.usefixtures("proxies")
@pytest.mark.parametrize(("peer", "forwarded_for", "client"), [
    ("10.1.2.3", "203.0.113.9", "203.0.113.9"),                            # one trusted proxy
    ("10.1.2.3", "203.0.113.9, 10.4.4.4", "203.0.113.9"),                  # a chain of trusted proxies
    ("10.1.2.3", "192.0.2.66, 203.0.113.9, 10.4.4.4", "203.0.113.9"),      # made-up entries left of the client
    ("198.51.100.7", "203.0.113.9", "198.51.100.7"),                       # an untrusted peer's header is ignored
    ("10.1.2.3", None, "10.1.2.3"),                                        # a trusted peer without the header
    ("10.1.2.3", "10.9.9.9, 10.4.4.4", "10.9.9.9"),                        # only proxies: the leftmost
    ("10.1.2.3", " 203.0.113.9 ,, ", "203.0.113.9"),                       # blanks
    ("10.1.2.3", "203.0.113.9:51234", "203.0.113.9"),                      # a port
    ("10.1.2.3", "[2001:db8::1]:443, fd00::5", "2001:db8::1"),             # IPv6 with brackets and port
    ("::ffff:10.1.2.3", "203.0.113.9", "203.0.113.9"),                     # an IPv4-mapped peer
    ("10.1.2.3", "203.0.113.9, unknown", "10.1.2.3"),                      # not an address: stop at the proxy
    ("10.1.2.3", "not-an-ip", "10.1.2.3"),
])
def test_trusted_proxy_walk(peer, forwarded_for, client):
    assert from_scope(peer, forwarded_for) == client


def test_the_trusted_list_follows_the_settings(settings_env):
    settings_env.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", '["127.0.0.1/32"]')
    assert from_scope("127.0.0.1", "203.0.113.9") == "203.0.113.9"
    settings_env.setenv("OFFICEFLOW_AUTH_TRUSTED_PROXIES", "[]")
    assert from_scope("127.0.0.1", "203.0.113.9") == "127.0.0.1"


@pytest.mark.usefixtures("proxies")
def test_client_address_of_a_request():
    def request(peer: tuple[str, int] | None, *headers: tuple[bytes, bytes]) -> Request:
        return Request({"type": "http", "method": "GET", "path": "/", "headers": list(headers), "client": peer})

    assert client_address(request(("10.1.2.3", 5000), (b"x-forwarded-for", b"203.0.113.9"))) == "203.0.113.9"
    assert client_address(request(("198.51.100.7", 5000), (b"x-forwarded-for", b"203.0.113.9"))) == "198.51.100.7"
    assert client_address(request(None)) == ""
