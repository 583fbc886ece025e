"""The workflows API's contract (its OpenAPI document): what is sent and what is answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Source = Literal["store", "file", "python"]


class Node(BaseModel):
    id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)


class WorkflowOut(BaseModel):
    id: str = Field(description="The workflow's name (also its DAG id); use it in the URLs.")
    name: str
    dag_id: str
    source: Source = Field(description="store: defined through this API; file: include/workflows/*.yaml; "
                                       "python: a bundled Python DAG. Only store workflows can be changed here.")
    read_only: bool
    description: str
    organization_id: str | None
    version: int | None = Field(description="Latest version (store workflows); PUT adds one.")
    trigger: dict[str, Any] | None
    params: dict[str, dict[str, Any]] = Field(description="Run params as JSON Schema (with their defaults).")
    nodes: list[Node] = Field(description="Nodes (tasks of Python DAGs, with their operator class as type).")
    tags: list[str]
    file: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


class WorkflowList(BaseModel):
    workflows: list[WorkflowOut]
    total_entries: int


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    definition: dict[str, Any]


class VersionList(BaseModel):
    workflow: str
    versions: list[VersionOut]
    total_entries: int


class ExecuteRequest(BaseModel):
    conf: dict[str, Any] = Field(default_factory=dict, description="Run params, checked against the workflow's "
                                 "params schema before the run is created.")
    dag_run_id: str | None = Field(default=None, min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.:+-]+$",
                                   description="Optional run id; executing again with the same id creates no "
                                   "second run.")


class ExecuteOut(BaseModel):
    dag_id: str
    dag_run_id: str
    version: int | None
