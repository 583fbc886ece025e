"""BambooHR, both sides: its employee API (``/bamboohr/api/gateway.php/{company}/v1/...``, :mod:`sandbox.bamboohr.api`)
and BambooHR as a webhook sender: sample payloads (:mod:`sandbox.bamboohr.samples`) and a sender that signs them as
BambooHR does (:mod:`sandbox.bamboohr.sender`, ``python -m sandbox.bamboohr.sender``, what ``./run.sh webhook``
runs)."""

from sandbox.bamboohr.api import provision_credentials, seed, service

__all__ = ["provision_credentials", "seed", "service"]
