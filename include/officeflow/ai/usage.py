"""The AI ledger: tokens and estimated cost of every call, and the switch each organization's budget drives.

Every call is recorded (table ``ai_usage``), also failed and invalid ones: they were paid for. An organization's
AI is **on** unless its settings say ``{"ai": {"enabled": false}}`` (or ``OFFICEFLOW_AI_ENABLED=false`` and its
settings say nothing) and its estimated spend this calendar month (UTC) is below its budget
(``settings.ai.monthly_budget_usd``, else ``OFFICEFLOW_AI_MONTHLY_BUDGET_USD``). Once spent, AI stays off for the
organization until the month ends: workflows take their plain path.

The check and the call are not one transaction: calls running at the same moment may each pass the check, so a
budget can be overshot by at most the calls in flight when it is reached (each bounded by its prompt's
``max_output_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from include.officeflow.settings import Settings, get_settings
from include.officeflow.store.models import AIUsage, Organization, new_id

MICRO = 1_000_000


@dataclass(frozen=True)
class Policy:
    """Whether an organization may use AI now, and why not."""

    organization_id: str
    enabled: bool
    reason: str | None  # "off" / "budget" when not enabled
    detail: str
    budget_usd: float
    spent_usd: float


def cost_micro_usd(model: str, input_tokens: int, output_tokens: int, prices: Mapping[str, Any]) -> int:
    """Estimated cost in micro-dollars. A dated model name the API answers with (``gpt-4o-mini-2024-07-18``) is
    priced as the longest listed name it starts with; an unlisted model costs the most expensive listed price."""
    price = prices.get(model)
    if price is None:
        prefixes = [name for name in prices if model.startswith(f"{name}-")]
        if prefixes:
            price = prices[max(prefixes, key=len)]
    if price is None:
        price = max(prices.values(), key=lambda p: (p[0] + p[1])) if prices else (0.0, 0.0)
    per_in, per_out = float(price[0]), float(price[1])
    return round(input_tokens * per_in + output_tokens * per_out)  # USD per 1M tokens == micro-USD per token


def month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend_micro_usd(conn: Connection, organization_id: str, now: datetime | None = None) -> int:
    total = conn.execute(select(func.coalesce(func.sum(AIUsage.cost_micro_usd), 0))
                         .where(AIUsage.organization_id == organization_id,
                                AIUsage.created_at >= month_start(now))).scalar_one()
    return int(total)


def organization_ai_settings(conn: Connection, organization_id: str) -> dict[str, Any]:
    """The organization's ``settings.ai`` (empty when it has none or does not exist)."""
    row = conn.execute(select(Organization.settings).where(Organization.id == organization_id)).first()
    value = (row[0] or {}).get("ai") if row else None
    return value if isinstance(value, dict) else {}


def policy(conn: Connection, organization_id: str, *, settings: Settings | None = None,
           now: datetime | None = None) -> Policy:
    """May ``organization_id`` use AI now?"""
    settings = settings or get_settings()
    own = organization_ai_settings(conn, organization_id)
    enabled = own.get("enabled", settings.ai_enabled)
    budget = own.get("monthly_budget_usd", settings.ai_monthly_budget_usd)
    try:
        budget = max(0.0, float(budget))
    except (TypeError, ValueError):
        budget = settings.ai_monthly_budget_usd
    spent = month_spend_micro_usd(conn, organization_id, now) / MICRO
    if enabled is False:
        where = "its settings" if "enabled" in own else "OFFICEFLOW_AI_ENABLED"
        return Policy(organization_id, False, "off", f"AI is off for organization {organization_id!r} ({where})",
                      budget, spent)
    if spent >= budget:
        return Policy(organization_id, False, "budget",
                      f"AI budget of organization {organization_id!r} is spent this month "
                      f"(${spent:.4f} of ${budget:.2f})", budget, spent)
    return Policy(organization_id, True, None, "on", budget, spent)


def record(conn: Connection, *, organization_id: str, prompt: str, prompt_version: int, model: str, outcome: str,
           input_tokens: int, output_tokens: int, dag_id: str | None = None, run_id: str | None = None,
           task_id: str | None = None, settings: Settings | None = None) -> int:
    """Write one call to the ledger; returns its estimated cost in micro-dollars."""
    settings = settings or get_settings()
    cost = cost_micro_usd(model, input_tokens, output_tokens, settings.ai_prices)
    conn.execute(insert(AIUsage).values(
        id=new_id(),
        created_at=datetime.now(UTC), organization_id=organization_id, dag_id=dag_id, run_id=run_id,
        task_id=task_id, prompt=prompt, prompt_version=prompt_version, model=model, outcome=outcome,
        input_tokens=input_tokens, output_tokens=output_tokens, cost_micro_usd=cost))
    return cost


def summary(conn: Connection, organization_id: str, *, month: datetime | None = None,
            settings: Settings | None = None) -> dict[str, Any]:
    """The organization's usage in the month of ``month`` (default: this month): totals, per workflow, per
    prompt, and its policy now."""
    start = month_start(month)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    where = (AIUsage.organization_id == organization_id, AIUsage.created_at >= start, AIUsage.created_at < end)
    columns = (func.count(), func.coalesce(func.sum(AIUsage.input_tokens), 0),
               func.coalesce(func.sum(AIUsage.output_tokens), 0), func.coalesce(func.sum(AIUsage.cost_micro_usd), 0))

    def rows(key: Any) -> list[dict[str, Any]]:
        result = conn.execute(select(key, *columns).where(*where).group_by(key).order_by(key))
        return [{"key": k, "calls": c, "input_tokens": int(i), "output_tokens": int(o), "cost_usd": int(m) / MICRO}
                for k, c, i, o, m in result]

    calls, tokens_in, tokens_out, cost = conn.execute(select(*columns).where(*where)).one()
    current = policy(conn, organization_id, settings=settings)
    return {"organization_id": organization_id, "month": start.strftime("%Y-%m"), "calls": calls,
            "input_tokens": int(tokens_in), "output_tokens": int(tokens_out), "cost_usd": int(cost) / MICRO,
            "budget_usd": current.budget_usd, "ai_enabled_now": current.enabled, "reason": current.detail,
            "by_workflow": [{"dag_id": r.pop("key"), **r} for r in rows(AIUsage.dag_id)],
            "by_prompt": [{"prompt": r.pop("key"), **r} for r in rows(AIUsage.prompt)],
            "by_outcome": [{"outcome": r.pop("key"), **r} for r in rows(AIUsage.outcome)]}


def run_usage(conn: Connection, run_id: str) -> dict[str, Any]:
    """One workflow run's calls, tokens and cost."""
    calls, tokens_in, tokens_out, cost = conn.execute(
        select(func.count(), func.coalesce(func.sum(AIUsage.input_tokens), 0),
               func.coalesce(func.sum(AIUsage.output_tokens), 0), func.coalesce(func.sum(AIUsage.cost_micro_usd), 0))
        .where(AIUsage.run_id == run_id)).one()
    return {"calls": calls, "input_tokens": int(tokens_in), "output_tokens": int(tokens_out),
            "cost_usd": int(cost) / MICRO}
