"""Slack: the Web API methods OfficeFlow calls (``/slack/api/<method>``); see :mod:`sandbox.slack.web_api`."""

from sandbox.slack.web_api import BOT_USER_ID, provision_credentials, seed, service

__all__ = ["BOT_USER_ID", "provision_credentials", "seed", "service"]
