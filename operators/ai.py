"""AI steps: personalised content, structured extraction, decision support and suggestions, through an
OpenAI-compatible API (:class:`operators.hooks.openai.OfficeFlowOpenAIHook`), with the care an HR system needs.

Every step renders a versioned prompt file (``include/prompts/<name>.yaml``): only the fields it declares leave
OfficeFlow, e-mail addresses and phone numbers in them are masked unless declared, and user-supplied text is
framed as data (:mod:`include.officeflow.ai.prompts`). Before calling, the step asks the ledger whether the
organization may use AI now (switched off in its settings, or its monthly budget spent:
:mod:`include.officeflow.ai.usage`); every call's tokens and estimated cost are recorded for the organization
and the run.

A structured answer is validated against the prompt's pydantic model (and the step's own checks); an invalid
one is asked again with what was wrong, up to ``OFFICEFLOW_AI_OUTPUT_ATTEMPTS`` answers.

What happens when AI is off, over budget or failing (after the client's retries on 429/5xx):

- :class:`GenerateTextOperator`, :class:`StructuredOutputOperator`, :class:`RecommendBundleOperator`: the step
  **succeeds without AI** (``source`` says why: ``off``, ``budget``, ``error``) and the workflow takes its plain
  path (the template's own text, no suggestions, no recommendation).
- :class:`ExtractOperator` (``on_failure="fail"``): off or over budget, it returns ``data`` None (the workflow
  uses its form fields); failing API or answers still invalid fail the step, saying what was wrong.

Each returns a dict: ``source`` (``ai`` or the reason there is no AI answer), ``reason``, ``prompt``
(``name@version``), ``model`` and ``usage`` (``calls``, ``input_tokens``, ``output_tokens``, ``cost_usd``), plus
``text`` or ``data``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from pydantic import BaseModel, ValidationError

from include.officeflow.ai.prompts import Prompt, load_prompt
from include.officeflow.ai.usage import MICRO, policy, record
from include.officeflow.branding import DEFAULT_ORGANIZATION
from include.officeflow.errors import ServiceError
from include.officeflow.settings import get_settings
from include.officeflow.store import get_engine
from include.officeflow.store.db import task_store_url
from operators.base import ServiceOperator, for_airflow
from operators.hooks.openai import OfficeFlowOpenAIHook

if TYPE_CHECKING:
    from airflow.sdk import Context

FALLBACK, FAIL = "fallback", "fail"


class InvalidAnswer(Exception):
    """The model's answers stayed invalid after every attempt; ``problems`` says what was wrong."""

    def __init__(self, prompt: str, problems: list[str]) -> None:
        super().__init__(f"{prompt}: the model's answer stayed invalid after every attempt: " + "; ".join(problems))
        self.problems = problems


class NoAI(Exception):
    """AI may not be used now (``source``: ``off`` or ``budget``) or is not configured."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(reason)
        self.source, self.reason = source, reason


class _AIOperator(ServiceOperator):
    """A step asking the model with one prompt file.

    :param prompt: the prompt file's name (``include/prompts/<prompt>.yaml``).
    :param variables: the values the prompt's fields are taken from (only declared fields leave). (templated)
    :param organization_id: whose switch and budget apply, and who is charged (default ``default``). (templated)
    :param on_failure: when the API fails after its retries or the answers stay invalid: ``fallback`` (succeed
        without AI) or ``fail``. AI switched off or over budget always takes the plain path.
    :param conn_id: the API's connection (default ``OFFICEFLOW_AI_CONN_ID``, ``officeflow_openai``).
    :param model: the model (default ``OFFICEFLOW_AI_MODEL``).
    """

    template_fields: Collection[str] = ("variables", "organization_id")
    ui_color = "#e3f2fd"

    def __init__(self, *, prompt: str, variables: Mapping[str, Any] | Any = None, organization_id: str | None = None,
                 on_failure: str = FALLBACK, conn_id: str | None = None, model: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if on_failure not in (FALLBACK, FAIL):
            raise ValueError(f"on_failure must be {FALLBACK!r} or {FAIL!r}, got {on_failure!r}")
        self.prompt_file = load_prompt(prompt)  # a missing or invalid prompt fails the DAG's import, not a run
        self.prompt, self.variables, self.organization_id = prompt, variables, organization_id
        self.on_failure, self.conn_id, self.model = on_failure, conn_id, model

    @cached_property
    def hook(self) -> OfficeFlowOpenAIHook:
        return OfficeFlowOpenAIHook(conn_id=self.conn_id)

    # --- what subclasses refine -----------------------------------------------------------------------------
    def check(self, answer: Any, variables: Mapping[str, Any]) -> list[str]:
        """Problems of a schema-valid answer beyond its schema (sent back to the model); none by default."""
        return []

    # --- the call ---------------------------------------------------------------------------------------------
    def ask(self, context: Context) -> dict[str, Any]:
        """The answer (``answer``: text or validated dict) and its bookkeeping; raises :class:`NoAI`,
        :class:`InvalidAnswer` or :class:`ServiceError`."""
        settings = get_settings()
        prompt = self.prompt_file
        variables = dict(self.variables or {})
        organization = str(self.organization_id or DEFAULT_ORGANIZATION)
        engine = get_engine(task_store_url())
        with engine.connect() as conn:
            current = policy(conn, organization, settings=settings)
        if not current.enabled:
            raise NoAI(current.reason or "off", current.detail)
        if not self._connection_exists():
            raise NoAI("off", f"no Airflow connection {self.hook.conn_id!r}: AI is not configured")
        model_name = self.model or settings.ai_model
        output = prompt.output_model()
        schema = _strict_schema(output) if output else None
        messages = prompt.messages(variables)
        ti = context.get("ti")
        where = {"dag_id": getattr(ti, "dag_id", None), "run_id": getattr(ti, "run_id", None),
                 "task_id": getattr(ti, "task_id", None)}
        usage = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_micro_usd": 0}
        problems: list[str] = []
        try:
            for attempt in range(1, settings.ai_output_attempts + 1):
                try:
                    completion = self.hook.complete(model=model_name, messages=messages,
                                                    max_output_tokens=prompt.max_output_tokens,
                                                    temperature=prompt.temperature, json_schema=schema,
                                                    schema_name=prompt.name)
                except ServiceError:
                    self._record(engine, prompt, organization, model_name, "error", 0, 0, where, usage)
                    raise
                answer, problems = self._validate(completion.text, completion.refusal, output, variables)
                outcome = "ok" if not problems else ("refused" if completion.refusal else "invalid_output")
                self._record(engine, prompt, organization, completion.model, outcome, completion.input_tokens,
                             completion.output_tokens, where, usage)
                if not problems:
                    self.log.info("%s answered by %s (attempt %d): %d+%d tokens, $%.6f so far", prompt.ref,
                                  completion.model, attempt, completion.input_tokens, completion.output_tokens,
                                  usage["cost_micro_usd"] / MICRO)
                    return {"answer": answer, "source": "ai", "reason": None, "prompt": prompt.ref,
                            "model": completion.model, "usage": _usage(usage)}
                self.log.warning("%s: answer %d of %d invalid: %s", prompt.ref, attempt,
                                 settings.ai_output_attempts, "; ".join(problems))
                messages = [*messages, {"role": "assistant", "content": completion.text or ""},
                            {"role": "user", "content": "Your answer was not valid: " + "; ".join(problems)
                             + ". Answer again, following the instructions and the required format exactly."}]
            raise InvalidAnswer(prompt.ref, problems)
        finally:
            self.last_usage = _usage(usage)

    def without_ai(self, context: Context, produce: Any) -> dict[str, Any]:
        """``produce(answer)`` with the model's answer, or the fallback result (or the failure) without it."""
        try:
            result = self.ask(context)
        except NoAI as exc:  # AI off or over budget is never a failure: the plain path
            self.log.info("No AI answer (%s): %s; the workflow takes its plain path", exc.source, exc.reason)
            return self._fallback(exc.source, exc.reason)
        except InvalidAnswer as exc:
            return self._unanswered("error", str(exc), failure=AirflowFailException(str(exc)))
        except ServiceError as exc:
            return self._unanswered("error", f"{self.prompt_file.ref}: {exc}",
                                    failure=for_airflow(exc, f"{self.prompt_file.ref}: {exc}"))
        answer = result.pop("answer")
        return {**result, **produce(answer)}

    def _unanswered(self, source: str, reason: str, failure: Exception) -> dict[str, Any]:
        if self.on_failure == FAIL:
            raise failure
        self.log.warning("No AI answer (%s): %s; the workflow takes its plain path", source, reason)
        return self._fallback(source, reason)

    def _fallback(self, source: str, reason: str) -> dict[str, Any]:
        return {"source": source, "reason": reason, "prompt": self.prompt_file.ref, "model": None,
                "usage": getattr(self, "last_usage", _usage({})), **self.fallback()}

    def fallback(self) -> dict[str, Any]:
        return {}

    # --- helpers ------------------------------------------------------------------------------------------------
    def _connection_exists(self) -> bool:
        try:
            self.hook.get_connection(self.hook.conn_id)
        except Exception:  # AirflowNotFoundException (not importable the same way in task SDK and core)
            return False
        return True

    def _validate(self, text: str | None, refusal: str | None, output: type[BaseModel] | None,
                  variables: Mapping[str, Any]) -> tuple[Any, list[str]]:
        if refusal:
            return None, [f"the model refused: {refusal[:200]}"]
        if text is None or not text.strip():
            return None, ["the answer was empty"]
        if output is None:
            return text.strip(), self.check(text.strip(), variables)
        try:
            data = output.model_validate_json(text).model_dump(mode="json")
        except ValidationError as exc:
            return None, [_problem(error) for error in exc.errors()[:10]]
        return data, self.check(data, variables)

    def _record(self, engine: Any, prompt: Prompt, organization: str, model: str, outcome: str, tokens_in: int,
                tokens_out: int, where: dict[str, Any], usage: dict[str, int]) -> None:
        with engine.begin() as conn:
            cost = record(conn, organization_id=organization, prompt=prompt.name, prompt_version=prompt.version,
                          model=model, outcome=outcome, input_tokens=tokens_in, output_tokens=tokens_out, **where)
        usage["calls"] += 1
        usage["input_tokens"] += tokens_in
        usage["output_tokens"] += tokens_out
        usage["cost_micro_usd"] += cost


def _problem(error: Mapping[str, Any]) -> str:
    """One validation error, by where and what (never the offending value: it may be personal data)."""
    where = ".".join(str(p) for p in error.get("loc", ())) or "answer"
    return f"{where}: {error.get('msg', 'invalid')}"


def _usage(usage: Mapping[str, int]) -> dict[str, Any]:
    return {"calls": usage.get("calls", 0), "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0), "cost_usd": usage.get("cost_micro_usd", 0) / MICRO}


def _strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The strict JSON schema structured outputs require (every property required, no extra ones), as the
    openai package builds it for its own ``parse`` helpers."""
    import openai

    return dict(openai.pydantic_function_tool(model)["function"]["parameters"])


class GenerateTextOperator(_AIOperator):
    """Free text from a prompt (e.g. a personal paragraph). Returns ``text`` (None without AI: the template's
    plain text is used) and the bookkeeping."""

    def execute(self, context: Context) -> dict[str, Any]:
        if self.prompt_file.output:
            raise AirflowFailException(f"{self.prompt}: a structured prompt; use StructuredOutputOperator")
        return self.without_ai(context, lambda text: {"text": text})

    def fallback(self) -> dict[str, Any]:
        return {"text": None}


class StructuredOutputOperator(_AIOperator):
    """A structured answer validated against the prompt's output model. Returns ``data`` (None without AI)."""

    def execute(self, context: Context) -> dict[str, Any]:
        if not self.prompt_file.output:
            raise AirflowFailException(f"{self.prompt}: the prompt declares no output model")
        return self.without_ai(context, lambda data: {"data": data})

    def fallback(self) -> dict[str, Any]:
        return {"data": None}


class ExtractOperator(StructuredOutputOperator):
    """Free text (a request, a note, a reason) to validated JSON; fails the step when it cannot.

    :param text: the free text; sent framed as untrusted data under the prompt's first untrusted field. (templated)
    """

    template_fields: Collection[str] = (*_AIOperator.template_fields, "text")

    def __init__(self, *, text: str, on_failure: str = FAIL, **kwargs: Any) -> None:
        super().__init__(on_failure=on_failure, **kwargs)
        if not self.prompt_file.untrusted:
            raise ValueError(f"prompt {self.prompt!r} declares no untrusted field for the text")
        self.text = text

    def execute(self, context: Context) -> dict[str, Any]:
        if not str(self.text or "").strip() or str(self.text).strip() == "None":
            raise AirflowSkipException("no text to read")
        self.variables = {**(self.variables or {}), self.prompt_file.untrusted[0]: self.text}
        return super().execute(context)


class RecommendBundleOperator(StructuredOutputOperator):
    """Decision support: an access and equipment bundle for a role, with a rationale citing the inputs.

    The answer must use only the catalog's items (``variables["catalog"]``: ``{"equipment": [...],
    "access_groups": [...]}``) and every citation must name one of ``variables["inputs"]`` (``[{"input": name,
    "value": value}]``) and quote its value (as it was sent). It only recommends:
    the workflow shows it in the approval request, and only an approved bundle is provisioned.
    """

    def check(self, answer: Any, variables: Mapping[str, Any]) -> list[str]:
        catalog = variables.get("catalog") or {}
        problems = []
        for kind in ("equipment", "access_groups"):
            allowed = set(catalog.get(kind) or [])
            unknown = [item for item in answer.get(kind, []) if item not in allowed]
            if unknown:
                problems.append(f"{kind}: {len(unknown)} item(s) not in the catalog; use only the catalog's items")
        inputs = {str(i.get("input")): str(i.get("value"))
                  for i in self.prompt_file.outgoing(variables).get("inputs") or [] if isinstance(i, dict)}
        for index, citation in enumerate(answer.get("rationale", [])):
            name, value = str(citation.get("input")), str(citation.get("value")).strip().lower()
            if name not in inputs:
                problems.append(f"rationale.{index}.input: must name one of the inputs ({', '.join(inputs)})")
            elif not value or value not in inputs[name].lower():
                problems.append(f"rationale.{index}.value: must quote the input {name!r} as given")
        if not answer.get("rationale"):
            problems.append("rationale: cite at least one input")
        return problems

    def execute(self, context: Context) -> dict[str, Any]:
        if not self.variables:  # nothing to decide on (the workflow requests nothing)
            raise AirflowSkipException("nothing to recommend for")
        return super().execute(context)


