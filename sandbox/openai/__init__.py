"""OpenAI: the Chat Completions and Models endpoints (``/openai/v1/...``) with deterministic answers; see
:mod:`sandbox.openai.api` (HTTP), :mod:`sandbox.openai.answers` (what it answers) and
:mod:`sandbox.openai.instances` (JSON-schema instances filled from the request)."""

from sandbox.openai.api import provision_credentials, seed, service

__all__ = ["provision_credentials", "seed", "service"]
