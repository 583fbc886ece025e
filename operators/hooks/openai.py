"""The OpenAI-compatible API (OpenAI, Azure OpenAI, vLLM, Ollama …): providers-openai's ``OpenAIHook`` with
OfficeFlow's timeouts, retries and error taxonomy.

The connection (``officeflow_openai``, conn type ``openai``) holds the base URL as its host and the API key as
its password; nothing else does (the key never reaches the store, a log or an XCom). The ``openai`` client
retries 429 (after ``Retry-After``), 408/409, 5xx, timeouts and connection errors itself with exponential
backoff (``OFFICEFLOW_AI_MAX_RETRIES``); what still fails is mapped onto :mod:`include.officeflow.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai
from airflow.providers.openai.hooks.openai import OpenAIHook

from include.officeflow.errors import AuthError, InvalidInput, ServiceError, Unavailable, for_status, parse_retry_after
from include.officeflow.integration_metrics import external_call
from include.officeflow.settings import get_settings

DEFAULT_CONN_ID = "officeflow_openai"


@dataclass(frozen=True)
class Completion:
    """One answer: its text (None when the model refused), the model that answered, and the tokens used."""

    text: str | None
    refusal: str | None
    model: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int


class OfficeFlowOpenAIHook(OpenAIHook):
    """``OpenAIHook`` on the ``officeflow_openai`` connection, with a timeout and bounded retries per call."""

    default_conn_name = DEFAULT_CONN_ID
    hook_name = "OfficeFlow OpenAI-compatible API"

    def __init__(self, conn_id: str | None = None, *, timeout: float | None = None,
                 max_retries: int | None = None, **kwargs: Any) -> None:
        settings = get_settings()
        super().__init__(conn_id=conn_id or settings.ai_conn_id, **kwargs)
        self.timeout = timeout if timeout is not None else settings.ai_timeout_seconds
        self.max_retries = max_retries if max_retries is not None else settings.ai_max_retries

    def get_conn(self) -> openai.OpenAI:
        return super().get_conn().with_options(timeout=self.timeout, max_retries=self.max_retries)

    def complete(self, *, model: str, messages: list[dict[str, str]], max_output_tokens: int,
                 temperature: float, json_schema: dict[str, Any] | None = None,
                 schema_name: str = "answer") -> Completion:
        """One chat completion; with ``json_schema`` a structured output (strict JSON schema)."""
        kwargs: dict[str, Any] = {"model": model, "messages": messages, "max_completion_tokens": max_output_tokens,
                                  "temperature": temperature}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": schema_name, "schema": json_schema, "strict": True}}
        with external_call("openai"):
            try:
                response = self.conn.chat.completions.create(**kwargs)
            except openai.APIError as exc:
                raise service_error(exc) from None
        if not response.choices:
            raise Unavailable("the API answered without a choice")
        choice = response.choices[0]
        usage = response.usage
        return Completion(text=choice.message.content, refusal=getattr(choice.message, "refusal", None),
                          model=response.model or model, finish_reason=choice.finish_reason,
                          input_tokens=usage.prompt_tokens if usage else 0,
                          output_tokens=usage.completion_tokens if usage else 0)


def service_error(exc: openai.APIError) -> ServiceError:
    """The :mod:`include.officeflow.errors` class of an ``openai`` failure (after the client's own retries).
    The message names the status and the API's message, never the request."""
    if isinstance(exc, openai.APITimeoutError):
        return Unavailable("the API timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Unavailable(f"cannot reach the API: {exc.__cause__ or exc}")
    if isinstance(exc, openai.APIStatusError):
        message = f"the API answered {exc.status_code}: {_api_message(exc)}"
        retry_after = parse_retry_after(exc.response.headers.get("retry-after"))
        return for_status(exc.status_code, message, retry_after=retry_after,
                          auth_hint=" (check the API key in the connection's password)")
    if isinstance(exc, openai.APIResponseValidationError):
        return InvalidInput(f"the API's answer has an unexpected shape: {exc}")
    return AuthError(str(exc)) if "api key" in str(exc).lower() else Unavailable(str(exc))


def _api_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str((error or {}).get("message") or exc.message)[:300]
