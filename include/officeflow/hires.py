"""What the HR workflows decide before calling anyone: validated input and the plan derived from it.

The DAGs in ``dags/`` only wire operators; the rules live here, where they are unit-tested:
who approves, who organizes which meeting, the onboarding channel's name, the search window of the
first-day meetings, the document keys and the template variables of every message.

Every ``validate_*`` function raises :class:`InvalidHire` listing every problem at once, so a bad
run fails in its first task, before any provider is called, with nothing to retry.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from include.officeflow.addresses import is_email_address

log = logging.getLogger(__name__)
HIRE_FIELDS = ("employee_id", "first_name", "last_name", "email", "personal_email", "department", "job_title",
               "start_date", "location", "manager", "manager_email", "time_zone", "identity_provider",
               "organization_id", "correlation_id", "source")
IDENTITY_PROVIDERS = ("google", "microsoft", "okta")
MAX_EQUIPMENT_ITEMS = 20


class InvalidHire(ValueError):
    """The run's input cannot start the workflow; the message lists every problem."""


def _text(params: dict[str, Any], name: str) -> str:
    return str(params.get(name) or "").strip()


def _check_email(value: str, name: str, problems: list[str], *, required: bool) -> None:
    if value and not is_email_address(value):
        problems.append(f"{name} {value!r} is not an email address")
    elif required and not value:
        problems.append(f"{name} is required")


def _check_date(value: str, name: str, problems: list[str]) -> None:
    if value:
        try:
            date.fromisoformat(value)
        except ValueError:
            problems.append(f"{name} {value!r} is not YYYY-MM-DD")


def _defaults() -> dict[str, str]:
    from include.officeflow.settings import get_settings

    settings = get_settings()
    return {"identity_provider": settings.default_identity_provider, "people_team": settings.people_team_email,
            "it_team": settings.it_team_email or settings.people_team_email, "time_zone": settings.default_time_zone}


def _common(params: dict[str, Any], problems: list[str]) -> dict[str, str]:
    """The fields every HR workflow shares, normalised and checked (emails, provider, time zone)."""
    person = {name: _text(params, name) for name in HIRE_FIELDS}
    person["email"] = person["email"].lower()
    person["manager_email"] = person["manager_email"].lower()
    person["organization_id"] = person["organization_id"] or "default"
    person["identity_provider"] = person["identity_provider"] or _defaults()["identity_provider"]
    person["time_zone"] = person["time_zone"] or _defaults()["time_zone"]
    _check_email(person["email"], "email", problems, required=True)
    _check_email(person["personal_email"], "personal_email", problems, required=False)
    _check_email(person["manager_email"], "manager_email", problems, required=False)
    if person["identity_provider"] not in IDENTITY_PROVIDERS:
        problems.append(f"identity_provider {person['identity_provider']!r} is not one of "
                        f"{', '.join(IDENTITY_PROVIDERS)}")
    try:
        ZoneInfo(person["time_zone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"time_zone {person['time_zone']!r} is not an IANA time zone")
    return person


def _raise(problems: list[str]) -> None:
    if problems:
        raise InvalidHire("; ".join(problems))


def _log_accepted(kind: str, person: dict[str, str]) -> None:
    log.info("Validated %s %s (organization_id=%s, correlation_id=%s, source=%s)", kind,
             person["employee_id"] or person["email"], person["organization_id"],
             person["correlation_id"] or "-", person["source"] or "-")


def validate_hire(params: dict[str, Any]) -> dict[str, str]:
    """The normalised new hire, or :class:`InvalidHire` naming each bad field."""
    problems: list[str] = []
    hire = _common(params, problems)
    if not hire["first_name"]:
        problems.append("first_name is required")
    if not hire["last_name"]:
        problems.append("last_name is required (the account's family name)")
    _check_date(hire["start_date"], "start_date", problems)
    _raise(problems)
    _log_accepted("hire", hire)
    return hire


def slug(*parts: str) -> str:
    """``"Zoë", "O'Brien"`` -> ``"zoe-obrien"``: ASCII, lowercase, digits and dashes (Slack channel rules)."""
    joined = "-".join(p for p in parts if p)
    ascii_text = unicodedata.normalize("NFKD", joined).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9-]+", "", re.sub(r"[\s_]+", "-", ascii_text.lower()))
    return re.sub(r"-{2,}", "-", cleaned).strip("-")


def onboarding_channel(first_name: str, last_name: str, employee_id: str = "") -> str:
    """The new hire's onboarding channel: ``onboarding-<first>-<last>[-<employee id>]``, at most 80 chars."""
    name = slug("onboarding", first_name, last_name, employee_id)
    return name[:80].rstrip("-")


def company_name(organization_id: str) -> str:
    from include.officeflow.branding import brand_for

    return str(brand_for(organization_id).get("name") or "OfficeFlow")


def _approver(manager_email: str, people_team: str, problems: list[str]) -> str:
    approver = manager_email or people_team
    if not approver:
        problems.append("manager_email is required (or set OFFICEFLOW_PEOPLE_TEAM_EMAIL as the fallback approver)")
    return approver


def first_day_window(start_date: str, today: date | None = None) -> tuple[str, str]:
    """Where the first-day meetings are searched: the start date's week (the start date itself first),
    or from tomorrow when the start date is unknown or already past."""
    tomorrow = (today or date.today()) + timedelta(days=1)
    first = date.fromisoformat(start_date) if start_date else tomorrow
    first = max(first, tomorrow)
    return first.isoformat(), (first + timedelta(days=7)).isoformat()


def equipment_items(value: Any) -> list[str]:
    """A list of item names from a list or a comma-separated string; empty names dropped."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    names = [str(i).strip() for i in items if str(i).strip()]
    if len(names) > MAX_EQUIPMENT_ITEMS:
        raise InvalidHire(f"equipment lists {len(names)} items; at most {MAX_EQUIPMENT_ITEMS}")
    return names


def onboarding_plan(params: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """Everything the onboarding steps need, from the run's params; :class:`InvalidHire` when it is unusable."""
    hire = validate_hire(params)
    defaults = _defaults()
    problems: list[str] = []
    approver = _approver(hire["manager_email"], defaults["people_team"], problems)
    it_team = defaults["it_team"] or approver
    _raise(problems)
    company = company_name(hire["organization_id"])
    start = hire["start_date"] or "your first day"
    manager_name = hire["manager"] or approver
    window_start, window_end = first_day_window(hire["start_date"], today)
    items = equipment_items(params.get("equipment"))
    key = f"hires/{hire['employee_id'] or slug(hire['email'])}"
    tags = {"employee_id": hire["employee_id"], "workflow": "employee_onboarding", "email": hire["email"]}
    template = {**hire, "company_name": company, "manager_name": manager_name, "start_date": start}
    return {
        **hire,
        "welcome_to": hire["personal_email"] or hire["email"],
        "approver_email": approver,
        "it_email": it_team,
        "company_name": company,
        "channel_name": onboarding_channel(hire["first_name"], hire["last_name"], hire["employee_id"]),
        "channel_invites": sorted({approver}),
        "meeting_window_start": window_start,
        "meeting_window_end": window_end,
        "equipment": items,
        "document_key": f"{key}/welcome_pack",
        "receipt_key": f"{key}/equipment_receipt",
        "document_tags": tags,
        "welcome_email": template,
        "heads_up_email": {**template, "checklist_url": ""},
        "first_day_email": {**template, "arrival_time": "09:00", "contact_name": manager_name,
                            "location": hire["location"] or "the main office",
                            "bring": ["a photo ID", "your bank details for payroll"],
                            "agenda": [{"time": "09:00", "title": "Welcome and IT setup"},
                                       {"time": "11:00", "title": f"1:1 with {manager_name}"}]},
        "welcome_pack": {"company_name": company, "first_name": hire["first_name"], "start_date": start,
                         "manager_name": manager_name,
                         "first_week": [{"day": "Day 1", "activity": "Accounts, equipment and IT setup"},
                                        {"day": "Day 1", "activity": f"1:1 with {manager_name}"},
                                        {"day": "Days 2-5", "activity": f"Meet the {hire['department'] or 'team'}"}],
                         "contacts": [{"topic": "Your manager", "contact": approver},
                                      {"topic": "IT", "contact": it_team}]},
        "channel_intro": {"first_name": hire["first_name"], "last_name": hire["last_name"], "start_date": start,
                          "job_title": hire["job_title"] or "a new team member",
                          "department": hire["department"] or "the team", "manager_name": manager_name},
        "equipment_request": {**equipment_request_plan(
            {**hire, "requester_email": approver, "requester_name": manager_name, "for_email": hire["email"],
             "for_name": f"{hire['first_name']} {hire['last_name']}", "approver_email": approver,
             "items": items, "reason": f"New hire starting {hire['start_date'] or 'soon'}"}, validated=True),
            "login": hire["email"]}
        if items else {},
        # What the AI steps may read (each prompt file declares which of these leave, and masks them):
        "ai_profile": {"first_name": hire["first_name"], "job_title": hire["job_title"],
                       "department": hire["department"], "manager_name": manager_name, "start_date": start,
                       "location": hire["location"], "company_name": company},
        "bundle_input": bundle_input(hire, items) if items else {},
    }


def bundle_input(hire: dict[str, Any], requested: list[str]) -> dict[str, Any]:
    """What the access-and-equipment recommendation may read: the role, what is already requested, and the
    catalog it must choose from (equipment not requested yet; every group the provider's mapping can grant)."""
    from include.officeflow.identity import load_group_mapping
    from include.officeflow.workflow_params import EQUIPMENT_CATALOGUE

    groups = load_group_mapping().of(hire["identity_provider"]).managed()
    inputs = [{"input": "job_title", "value": hire["job_title"] or "not given"},
              {"input": "department", "value": hire["department"] or "not given"},
              {"input": "requested_equipment", "value": ", ".join(requested)}]
    return {"inputs": inputs, "catalog": {"equipment": [e for e in EQUIPMENT_CATALOGUE if e not in requested],
                                          "access_groups": sorted(groups)}}


def with_personal_texts(hire: dict[str, Any], personalised: dict[str, Any] | None) -> dict[str, Any]:
    """The welcome email's, welcome pack's and Slack intro's variables, with the AI step's texts when it gave
    some (else the templates' plain text), and which text was used."""
    texts = (personalised or {}).get("data") or {}
    source = (personalised or {}).get("source") or "skipped"
    used = (f"personalised by AI ({personalised.get('prompt')})" if texts and personalised
            else f"plain templates ({(personalised or {}).get('reason') or source})")
    return {"welcome_email": {**hire["welcome_email"], "personal_note": texts.get("email_intro", "")},
            "welcome_pack": {**hire["welcome_pack"], "personal_section": texts.get("welcome_pack_section", "")},
            "channel_intro": {**hire["channel_intro"], "personal_line": texts.get("slack_intro", "")},
            "texts_used": used}


def with_recommendation(plan: dict[str, Any], recommendation: dict[str, Any] | None) -> dict[str, Any]:
    """The equipment request shown for approval, with the AI's bundle recommendation when there is one: the
    approval request lists it with its reasons, and approving it approves the bundle (its equipment on the
    receipt, its access groups granted). Without one, the request is what was asked for."""
    from include.officeflow.ai.schemas import recommendation_lines

    data = (recommendation or {}).get("data") or {}
    extra = [e for e in data.get("equipment") or [] if e not in plan["items"]]
    groups = list(data.get("access_groups") or [])
    lines = recommendation_lines(recommendation)
    receipt = {**plan["receipt"], "items": [*plan["receipt"]["items"],
                                            *({"name": e, "serial": "to be assigned", "asset_tag": "pending"}
                                              for e in extra)]}
    return {**plan, "items": [*plan["items"], *extra], "access_groups": groups, "receipt": receipt,
            "body": "\n".join([plan["body"], *lines]) if lines else plan["body"],
            "recommendation": (f"{recommendation.get('prompt')}: {', '.join(extra + groups) or 'nothing more'}"
                               if data and recommendation else None)}


def onboarding_summary(hire: dict[str, Any], results: dict[str, Any]) -> str:
    """The manager's summary of an onboarding run, from the steps' results (None = skipped or not run)."""
    name = f"{hire['first_name']} {hire['last_name']}"
    account = results.get("provision_account") or {}
    lines = [f"Onboarding of {name} ({hire['email']}) is done."]
    if account:
        lines.append(f"- {account.get('provider')} account {account.get('login')} "
                     f"{'created' if account.get('created') else 'already existed'}; groups: "
                     f"{', '.join(account.get('groups') or []) or 'none'}")
    pack = results.get("welcome_pack") or {}
    if pack:
        lines.append(f"- welcome pack stored (document {pack.get('document_id')}, version {pack.get('version')}) "
                     f"and emailed to {hire['welcome_to']}")
    channel = results.get("create_slack_channel") or {}
    if channel:
        lines.append(f"- Slack channel #{channel.get('name')}")
    for step, label in (("schedule_manager_1on1", "1:1 with the manager"), ("schedule_it_setup", "IT setup")):
        meeting = results.get(step) or {}
        if meeting:
            lines.append(f"- {label}: {_when(meeting.get('start'))} ({hire['time_zone']})")
    decision = results.get("equipment.approval") or {}
    if hire.get("equipment"):
        chosen = (decision.get("chosen_options") or ["not decided"])[0]
        request = results.get("equipment.prepare") or {}
        asked = request.get("items") or hire["equipment"]
        lines.append(f"- equipment ({', '.join(asked)}): {chosen}")
        granted = results.get("equipment.grant_access") or {}
        if granted.get("groups"):
            lines.append(f"- access granted on approval: {', '.join(granted['groups'])}")
    if results.get("texts_used"):
        lines.append(f"- welcome texts: {results['texts_used']}")
    return "\n".join(lines)


def _when(start: Any) -> str:
    """``2026-12-02T09:45:00+01:00`` -> ``Wed 2 Dec 2026, 09:45`` (the meeting's own wall-clock time)."""
    try:
        moment = datetime.fromisoformat(str(start))
    except ValueError:
        return str(start)
    return f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M}"


def validate_leaver(params: dict[str, Any], today: date | None = None) -> dict[str, Any]:
    """The normalised leaver and the offboarding plan, or :class:`InvalidHire`."""
    from include.officeflow.settings import get_settings

    problems: list[str] = []
    leaver: dict[str, Any] = _common(params, problems)
    leaver["termination_date"] = _text(params, "termination_date")
    _check_date(leaver["termination_date"], "termination_date", problems)
    defaults = _defaults()
    approver = _approver(leaver["manager_email"], defaults["people_team"], problems)
    retention = params.get("retention_days")
    retention_days = get_settings().offboarding_retention_days if retention in (None, "") else retention
    if not isinstance(retention_days, int) or isinstance(retention_days, bool) or retention_days < 0:
        problems.append(f"retention_days {retention_days!r} must be a whole number of days >= 0")
    _raise(problems)
    last_day = leaver["termination_date"] or (today or date.today()).isoformat()
    name = " ".join(p for p in (leaver["first_name"], leaver["last_name"]) if p) or leaver["email"]
    _log_accepted("leaver", leaver)
    return {
        **leaver,
        "last_day": last_day,
        "exit_to": leaver["personal_email"] or leaver["email"],
        "approver_email": approver,
        "retention_days": retention_days,
        "full_name": name,
        "channel_name": onboarding_channel(leaver["first_name"], leaver["last_name"], leaver["employee_id"]),
        "document_prefix": f"hires/{leaver['employee_id'] or slug(leaver['email'])}/",
        "manager_reader": f"user:{approver}",
        "exit_email": {"first_name": leaver["first_name"] or name, "last_day": last_day,
                       "personal_email": leaver["personal_email"],
                       "return_instructions": "hand your laptop and badge to IT on your last day"},
        "manager_checklist": {"first_name": leaver["first_name"] or name, "last_name": leaver["last_name"],
                              "last_day": last_day, "manager_name": leaver["manager"] or approver},
        "approval_subject": f"Offboard {name} ({leaver['email']}), last day {last_day}",
        "meetings_from": datetime.combine(date.fromisoformat(last_day), datetime.min.time()).isoformat(),
    }


def validate_role_change(params: dict[str, Any]) -> dict[str, Any]:
    """The normalised role change (new department and/or job title), or :class:`InvalidHire`."""
    problems: list[str] = []
    change: dict[str, Any] = _common(params, problems)
    change["effective_date"] = _text(params, "effective_date")
    _check_date(change["effective_date"], "effective_date", problems)
    for field in ("first_name", "last_name"):
        if not change[field]:
            problems.append(f"{field} is required (the account's profile is updated)")
    if not change["department"] and not change["job_title"]:
        problems.append("department or job_title is required (the new role)")
    _raise(problems)
    name = f"{change['first_name']} {change['last_name']}"
    _log_accepted("role change", change)
    when = change["effective_date"] or "now"
    where = f" in {change['department']}" if change["department"] else ""
    return {**change, "full_name": name,
            "email_variables": {"first_name": change["first_name"], "job_title": change["job_title"],
                                "department": change["department"], "effective_date": change["effective_date"],
                                "manager_name": change["manager"]},
            "announcement": f"{name} is now {change['job_title'] or 'in a new role'}{where} (effective {when})."}


def equipment_request_plan(params: dict[str, Any], *, validated: bool = False) -> dict[str, Any]:
    """An equipment request: who asks, for whom, what, who approves; :class:`InvalidHire` when unusable."""
    problems: list[str] = []
    requester = _text(params, "requester_email").lower()
    for_email = (_text(params, "for_email") or requester).lower()
    _check_email(requester, "requester_email", problems, required=True)
    _check_email(for_email, "for_email", problems, required=False)
    approver = _text(params, "approver_email").lower() or _text(params, "manager_email").lower()
    _check_email(approver, "approver_email", problems, required=False)
    approver = _approver(approver, "" if validated else _defaults()["people_team"], problems)
    try:
        items = equipment_items(params.get("items"))
    except InvalidHire as exc:
        problems.append(str(exc))
        items = []
    if not items:
        problems.append("items must name at least one piece of equipment")
    _raise(problems)
    requester_name = _text(params, "requester_name") or requester
    for_name = _text(params, "for_name") or for_email
    organization = _text(params, "organization_id") or "default"
    title = f"Equipment for {for_name}: {', '.join(items)}"
    reason = _text(params, "reason")
    return {
        "requester_email": requester, "requester_name": requester_name, "for_email": for_email,
        "for_name": for_name, "approver_email": approver, "items": items, "organization_id": organization,
        "subject": title[:150], "body": f"{requester_name} asks for: {', '.join(items)}."
                                        + (f" Reason: {reason}." if reason else ""),
        "receipt": {"company_name": company_name(organization), "employee_name": for_name,
                    "issued_by": approver, "issued_on": date.today().isoformat(),
                    "items": [{"name": i, "serial": "to be assigned", "asset_tag": "pending"} for i in items]},
        "receipt_key": f"equipment/{slug(for_email)}/{slug(*items)[:60]}",
    }


def with_details(params: dict[str, Any], details: dict[str, Any] | None) -> dict[str, Any]:
    """An equipment request's params with what its free-text details say (an extraction step's result): the
    items it names join the form's, and the approver sees its urgency, date and justification."""
    data = (details or {}).get("data")
    if not data:
        return params
    items = list(dict.fromkeys([*equipment_items(params.get("items")), *data.get("items", [])]))
    said = [f"urgency {data['urgency']}"] + ([f"needed by {data['needed_by']}"] if data.get("needed_by") else [])
    reason = "; ".join(p for p in (_text(params, "reason"), data.get("justification"), ", ".join(said)) if p)
    return {**params, "items": items, "reason": reason}


def equipment_decision(request: dict[str, Any], approval: dict[str, Any] | None) -> dict[str, Any]:
    """The ``approval_decision`` email's variables from the approval task's result (None = never decided)."""
    chosen = (approval or {}).get("chosen_options") or []
    responder = (approval or {}).get("responded_by_user") or {}
    decision = "approved" if chosen == ["Approve"] else "rejected" if chosen else "not decided"
    return {"requester_name": request["requester_name"], "request_title": request["subject"],
            "decision": decision, "approver_name": responder.get("name") or request["approver_email"],
            "comment": ""}
