"""Slack: the Web API methods OfficeFlow calls (``/slack/api/<method>``; see :mod:`sandbox.slack.web_api`)
and interactivity (views, ``users.info``, and the user's side: slash commands, clicks, view submissions
and App Home events sent signed to the app; see :mod:`sandbox.slack.interactivity`)."""

from sandbox.slack import interactivity  # noqa: F401  (registers its methods and routes on the service)
from sandbox.slack.web_api import BOT_USER_ID, provision_credentials, seed, service

__all__ = ["BOT_USER_ID", "provision_credentials", "seed", "service"]
