"""The status code a gateway request was answered with, for the plain ASGI middlewares (metrics, access log,
request span) that report it after the request."""

from __future__ import annotations

from starlette.types import Message, Send


class ResponseStatus:
    """Wraps ``send``: forwards every message and keeps the response's status (500 until the app answered,
    what the client gets when the app raises first)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.value = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.value = message["status"]
        await self._send(message)
