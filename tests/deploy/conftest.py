"""Fixtures of the deployment tests: offline Kubernetes schemas and a real Kubernetes control plane."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from include.officeflow.store import migrate
from tests.harness.chart import kubeconform_schemas
from tests.harness.kube import KubeCluster


@pytest.fixture(scope="session")
def kube_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kubeconform_schemas(tmp_path_factory.mktemp("kubeconform"))


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeCluster]:
    """A real Kubernetes control plane (etcd, kube-apiserver, -controller-manager, -scheduler) with kwok's
    fake nodes, for the session."""
    cluster = KubeCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def store(postgres) -> str:
    """The OfficeFlow store the executor test's tasks write to."""
    url = postgres.create_database("officeflow_deploy")
    migrate(url)
    return url
