"""The structured answers OfficeFlow's prompts ask for (a prompt file names one as its ``output``), and how a
workflow shows them. Every model forbids extra keys: the API's structured outputs are strict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from include.officeflow.workflow_params import EQUIPMENT_CATALOGUE

Equipment = Literal[EQUIPMENT_CATALOGUE]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WelcomeTexts(_Strict):
    """Personal texts for a new hire: a paragraph of the welcome email, the Slack intro's line, a welcome-pack
    section. Plain text, no greeting or signature (the templates have those)."""

    email_intro: str = Field(min_length=20, max_length=800)
    slack_intro: str = Field(min_length=10, max_length=300)
    welcome_pack_section: str = Field(min_length=20, max_length=1500)


class EquipmentDetails(_Strict):
    """What a free-text equipment request asks for."""

    items: list[Equipment] = Field(min_length=1, max_length=8)
    urgency: Literal["low", "normal", "high"]
    needed_by: str | None = Field(description="ISO date (YYYY-MM-DD) when the text names one, else null",
                                  pattern=r"^\d{4}-\d{2}-\d{2}$")
    justification: str = Field(min_length=3, max_length=400)


class Citation(_Strict):
    input: str = Field(description="the name of the input field this reason rests on")
    value: str = Field(description="that input's value, quoted")
    reason: str = Field(min_length=3, max_length=300)


class BundleRecommendation(_Strict):
    """An access and equipment bundle for a role, every reason citing an input. Only recommends."""

    equipment: list[str] = Field(max_length=8)
    access_groups: list[str] = Field(max_length=10)
    rationale: list[Citation] = Field(min_length=1, max_length=6)


def recommendation_lines(recommendation: Mapping[str, Any] | None) -> list[str]:
    """A recommendation (a recommend step's result) as lines for an approval request; none without one."""
    data = (recommendation or {}).get("data")
    if not data:
        return []
    lines = [f"AI recommendation ({recommendation.get('prompt')}, needs your approval):",  # type: ignore[union-attr]
             f"- equipment: {', '.join(data.get('equipment') or []) or 'nothing more'}",
             f"- access groups: {', '.join(data.get('access_groups') or []) or 'none'}"]
    lines += [f"- because {c['input']} = {c['value']}: {c['reason']}" for c in data.get("rationale") or []]
    return lines
