"""The note a person sees on an OfficeFlow run in the Airflow UI: whose run it is, what started it, and
when it ends, how it went.

Airflow names a run ``manual__2026-12-01T20:05:02…`` or by the event it came from; the note (Markdown,
shown on the run's page and editable there) says *"Ada Lovelace (ada@example.com) · BambooHR event
employee.created 4711 · correlation 6f1c…"*, and at the end adds the run's result: the DAG's result
(``dag.add_result``, e.g. onboarding's summary) or the tally of its steps.

Pure functions: the gateway and the workflows API pass :func:`start_note` to the run they create; the
plugin's run listener writes it for runs started elsewhere (the UI form, the REST API) and appends
:func:`finish_note`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

#: Airflow keeps a run's note in a 1000-character column.
MAX_NOTE = 1000
SOURCES = {"bamboohr": "BambooHR", "workday": "Workday", "generic": "webhook", "manual": "a person",
           "workflows_api": "the workflows API", "kafka": "Kafka",
           "workday-reconciliation": "Workday reconciliation"}
RESULT_RULE = "\n\n---\n"
BADGES = {"success": "✔ **Done**", "failed": "✘ **Failed**"}  # in every font (emoji fonts are not)
OUTCOME_BADGE = re.compile(r"^(?:✔ \*\*Done\*\*|✘ \*\*Failed\*\*|! \*\*[^*]+\*\*) · ")


def subject(conf: Mapping[str, Any] | None) -> str:
    """Whom the run is about, from its conf: ``"Ada Lovelace (ada@example.com)"``; ``""`` when unknown."""
    conf = conf or {}

    def text(*keys: str) -> str:
        for key in keys:
            value = conf.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    name = " ".join(part for part in (text("first_name"), text("last_name")) if part) or text("for_name", "full_name")
    address = text("email", "for_email", "requester_email", "manager_email")
    if name and address:
        return f"{name} ({address})"
    return name or address


def start_note(conf: Mapping[str, Any] | None, *, started_by: str, correlation_id: str | None = None) -> str:
    """The run's first line(s): who it is about, what started it, the correlation id to follow it by."""
    who = subject(conf)
    cid = correlation_id or (conf or {}).get("correlation_id")
    parts = [f"**{_escape(who)}**" if who else "", f"started by {_escape(started_by)}",
             f"correlation `{_escape(str(cid))}`" if cid else ""]
    return _fit(" · ".join(p for p in parts if p))


def started_by_event(source: str | None, event_type: str, provider_event_id: str) -> str:
    """``"BambooHR event employee.created (4711)"`` for a run the gateway starts."""
    label = SOURCES.get(source or "", source or "webhook")
    return f"{label} event {event_type} ({provider_event_id})"


def started_by_trigger(triggered_by: str | None, user: str | None, source: str | None = None) -> str:
    """``"admin in the Airflow UI"`` / ``"the REST API (admin)"`` for a run started through Airflow."""
    via = {"ui": "the Airflow UI", "rest_api": "the REST API", "cli": "the Airflow CLI",
           "test": "a test"}.get((triggered_by or "").lower(), (triggered_by or "Airflow").lower())
    if source and source not in ("manual", ""):
        via = f"{via} ({SOURCES.get(source, source)})"
    return f"{user} in {via}" if user else via


def finish_note(note: str | None, *, state: str, result: Any = None,
                step_states: Sequence[str | None] = ()) -> str:
    """``note`` with the run's outcome: a badge in front of its first line (what the run page shows) and,
    below a rule, the result or the tally of the steps. Finishing again (a cleared and re-run run)
    replaces the previous outcome."""
    head = (note or "").split(RESULT_RULE, 1)[0]
    first, newline, rest = head.partition("\n")
    first = OUTCOME_BADGE.sub("", first)
    badge = BADGES.get(state, f"! **{state.capitalize()}**")
    head = f"{badge} · {first}{newline}{rest}" if first else badge
    tally = Counter(s or "not run" for s in step_states)
    body = _result_text(result) or ", ".join(f"{count} {name}" for name, count in sorted(tally.items()))
    if not body:
        return _fit(head)
    room = MAX_NOTE - len(head) - len(RESULT_RULE)
    if room < 200:  # a person's long note keeps most of its text; the outcome takes what fits
        head = head[: MAX_NOTE - len(RESULT_RULE) - 200]
        room = 200
    return f"{head}{RESULT_RULE}{_fit(body, room)}"


def _result_text(result: Any) -> str:
    if result is None:
        return ""
    if isinstance(result, Mapping) and len(result) == 1:
        result = next(iter(result.values()))
    if isinstance(result, str):
        return result
    if isinstance(result, Mapping):
        return "\n".join(f"- {key}: {value}" for key, value in result.items())
    return str(result)


def _escape(text: str) -> str:
    return text.replace("*", "\\*").replace("`", "'").replace("\n", " ")


def _fit(text: str, limit: int = MAX_NOTE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
