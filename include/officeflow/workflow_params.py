"""The trigger-form fields of OfficeFlow's workflows, shared so every DAG asks the same way.

Airflow's trigger form (3.3) treats a param as *required* when its JSON-schema ``type`` is set and
does not include ``"null"``, and disables Trigger while a required field is empty (``null`` or
``""``). So:

- a field a person must fill has a plain type and no default (:func:`required_text`, :func:`email`);
- every optional field is nullable with a ``None`` default (:func:`optional_text`, :func:`date`, ...),
  so leaving it empty is valid and the workflow's rules (``include/officeflow/hires.py``) decide;
- fields with a sensible default (identity provider, time zone) are selects preset from settings;
- what the gateway and the APIs fill for a run (organization, source, correlation id) sits in a
  collapsed "Run details" section, nullable, out of a person's way (:func:`run_params`).

:func:`form_problems` applies the form's own rule to a DAG's params; the DAG tests run it on every DAG.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

#: The trigger form's section for what systems fill (collapsed; the form's default section is "Run Parameters").
RUN_DETAILS = "Run details (filled by the gateway and the APIs)"

IDENTITY_PROVIDERS = {"google": "Google Workspace", "microsoft": "Microsoft Entra ID", "okta": "Okta"}

#: What the equipment fields offer to pick (a run started through the API may name anything else).
EQUIPMENT_CATALOGUE = ("laptop", "monitor", "keyboard", "mouse", "headset", "docking station", "phone", "badge")


def _param(default: Any, **schema: Any) -> Any:
    from airflow.sdk import Param

    return Param(default, **schema)


def required_text(title: str, description: str, **schema: Any) -> Any:
    """A text field a person must fill (Trigger stays disabled, with the field marked, until they do)."""
    from airflow.sdk import Param

    return Param(type="string", minLength=1, title=title, description=description, **schema)


def email(title: str, description: str) -> Any:
    """A required email address."""
    return required_text(title, description, format="idn-email")


def text(title: str, description: str, *, default: str, **schema: Any) -> Any:
    """A text field preset to ``default`` (a person may change it; clearing it blocks Trigger)."""
    return _param(default, type="string", minLength=1, title=title, description=description, **schema)


def optional_text(title: str, description: str, **schema: Any) -> Any:
    """A text field that may stay empty (then ``None``)."""
    return _param(None, type=["null", "string"], title=title, description=description, **schema)


def optional_email(title: str, description: str) -> Any:
    """An email address that may stay empty."""
    return optional_text(title, description, format="idn-email")


def date(title: str, description: str) -> Any:
    """An optional date (YYYY-MM-DD), shown as a date picker."""
    return optional_text(title, description, format="date")


def days(title: str, description: str, default: int, maximum: int = 3650) -> Any:
    """A whole number of days, preset to ``default``."""
    return _param(default, type="integer", minimum=0, maximum=maximum, title=title, description=description)



def approval_check(where: str) -> dict[str, Any]:
    """The approver and channel of an approval check DAG (officeflow_approval_smoke, officeflow_approval_burst)."""
    return {"approver": text("Approver", "A Slack user's email; only they may decide.",
                             default="admin@officeflow.test", format="idn-email"),
            "channel": text("Slack channel", where, default="#general")}


def count(title: str, description: str, default: int, maximum: int) -> Any:
    """A whole number from 1 to ``maximum``, preset to ``default``."""
    return _param(default, type="integer", minimum=1, maximum=maximum, title=title, description=description)


def text_list(title: str, description: str) -> Any:
    """An optional list of short texts (one per line in the trigger form), empty by default."""
    return _param(None, type=["null", "array"], items={"type": "string", "minLength": 1, "maxLength": 250},
                  uniqueItems=True, title=title, description=description)

# --- the person fields the HR workflows share ---------------------------------------------------------


def names(whose: str, *, required: bool = True, why: str = "") -> dict[str, Any]:
    """``first_name`` and ``last_name`` of ``whose`` (e.g. "The new hire's"); optional ones say ``why``."""
    field = required_text if required else optional_text
    return {"first_name": field("First name", f"{whose} given name.{why}"),
            "last_name": field("Last name", f"{whose} family name.{why}")}


def role(department: str, job_title: str, *, new: bool = False) -> dict[str, Any]:
    """``department`` and ``job_title`` (``new``: of a role change), each with what it decides."""
    prefix = "New " if new else ""
    return {"department": optional_text(f"{prefix}department".capitalize(), department),
            "job_title": optional_text(f"{prefix}job title".capitalize(), job_title)}


def manager(email: str, name: str = "Used in the emails.") -> dict[str, Any]:
    """``manager`` (their name) and ``manager_email`` (what the manager does in this workflow)."""
    return {"manager": optional_text("Manager's name", name),
            "manager_email": optional_email("Manager's email", email)}


def employee_id(use: str) -> Any:
    """The HR system's id of the person (BambooHR, Workday) and what the workflow ``use``s it for."""
    return optional_text("HR employee id", f"The HR system's id (BambooHR/Workday); {use}")


def identity_provider() -> Any:
    """The run's identity provider, preset to the company's (``OFFICEFLOW_DEFAULT_IDENTITY_PROVIDER``)."""
    from include.officeflow.settings import get_settings

    return _param(get_settings().default_identity_provider, type="string", enum=list(IDENTITY_PROVIDERS),
                  values_display=IDENTITY_PROVIDERS, title="Identity provider",
                  description="Where the account lives; preset to the company's provider.")


def identity_providers() -> Any:
    """Several identity providers (a multi-select, all three preset)."""
    return _param(list(IDENTITY_PROVIDERS), type="array", items={"type": "string", "enum": list(IDENTITY_PROVIDERS)},
                  examples=list(IDENTITY_PROVIDERS), values_display=IDENTITY_PROVIDERS, minItems=1,
                  uniqueItems=True, title="Identity providers", description="Where to create the accounts.")


@cache
def time_zones() -> tuple[str, ...]:
    """Every IANA time zone this machine knows, sorted (the select's options)."""
    from zoneinfo import available_timezones

    return tuple(sorted(available_timezones()))


def time_zone(title: str = "Time zone", description: str = "The person's time zone: their meetings are booked in "
              "it (preset to the company's).") -> Any:
    """An IANA time zone, as a searchable select preset to ``OFFICEFLOW_DEFAULT_TIME_ZONE``."""
    from include.officeflow.settings import get_settings

    return _param(get_settings().default_time_zone, type="string", enum=list(time_zones()), title=title,
                  description=description)


def equipment(title: str, description: str, *, default: Iterable[str] = ("laptop",), required: bool = False) -> Any:
    """A list of equipment, picked from :data:`EQUIPMENT_CATALOGUE` (any item names pass through the APIs)."""
    kind: Any = "array" if required else ["null", "array"]
    return _param(list(default), type=kind, items={"type": "string", "minLength": 1}, maxItems=20,
                  examples=list(EQUIPMENT_CATALOGUE), title=title, description=description,
                  **({"minItems": 1} if required else {}))


def run_params() -> dict[str, Any]:
    """What started the run and for whom; the gateway and the APIs fill these, a person leaves them."""
    return {
        "organization_id": _param("default", type="string", minLength=1, title="Organization",
                                  description="The organization the run belongs to (the gateway sets the "
                                  "endpoint's).", section=RUN_DETAILS),
        "source": _param("manual", type=["null", "string"], title="Started by",
                         description="What started the run: manual, bamboohr, workday, generic, workflows_api.",
                         section=RUN_DETAILS),
        "correlation_id": optional_text("Correlation id", "The triggering request's X-Correlation-ID; follow it "
                                        "through the gateway, the task logs and the event inbox.",
                                        section=RUN_DETAILS),
    }


# --- the form's rule ---------------------------------------------------------------------------------


def is_required(schema: Mapping[str, Any]) -> bool:
    """Airflow's trigger form: a field is required when its type is set and does not allow ``null``."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def form_problems(params: Mapping[str, Any], must_fill: Iterable[str]) -> list[str]:
    """Why the trigger form of a DAG with these params would block a person, for each field.

    ``params`` maps names to serialised params (``{"value", "schema", "description"}``, as
    ``ParamsDict.dump()`` gives) or to ``airflow.sdk.Param`` objects; ``must_fill`` names the fields a
    person is meant to fill. Every other field must leave Trigger enabled when left as it opens, and
    every field needs a title and a description.
    """
    must = set(must_fill)
    problems = []
    for name, param in params.items():
        value, schema, description = _parts(param)
        if not schema.get("title"):
            problems.append(f"{name}: no title")
        if not (description or schema.get("description_md")):
            problems.append(f"{name}: no description")
        empty = value is None or value == "" or value == []
        if name in must:
            if not is_required(schema):
                problems.append(f"{name}: a person must fill it, but the form does not mark it required")
        elif is_required(schema) and empty:
            problems.append(f"{name}: optional, but an empty {schema.get('type')!r} field blocks Trigger "
                            "(make it nullable or give it a default)")
    for name in sorted(must - set(params)):
        problems.append(f"{name}: not a param")
    return problems


def _parts(param: Any) -> tuple[Any, Mapping[str, Any], str | None]:
    dumped = param if isinstance(param, Mapping) else param.dump()  # dump() turns "no default" into None
    return dumped.get("value"), dumped.get("schema") or {}, dumped.get("description")
