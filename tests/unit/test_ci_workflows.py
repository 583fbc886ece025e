"""The GitHub Actions workflows parse, and every command their `run:` steps call exists: ./run.sh subcommands in
run.sh's case statement, scripts in the repository, files they read; tool versions match scripts/install-tools.sh."""

from __future__ import annotations

import itertools
import re
import shlex

import pytest
import yaml

from tests.harness.environment import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
# Commands from the runner image, setup-* actions or the steps themselves (not from this repository).
EXTERNAL = {"python", "python3", "pip", "sudo", "echo", "mkdir", "go", "helm", "kubeconform", "hadolint", "docker"}


def workflows() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(WORKFLOWS.glob("*.yml"))}


def run_sh_commands() -> set[str]:
    text = (REPO_ROOT / "run.sh").read_text()
    block = text[text.index('case "${1:-help}" in'):]
    return {name for line in re.findall(r"^\s+([a-z|-]+)\)", block, re.M) for name in line.split("|")}


def install_tools_version(name: str) -> str:
    return re.search(rf"^{name}=(\S+)", (REPO_ROOT / "scripts" / "install-tools.sh").read_text(), re.M)[1]


def matrices(job: dict) -> list[dict[str, str]]:
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    keys = [k for k in matrix if k not in ("include", "exclude")]
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(matrix[k] for k in keys))] or [{}]


def expand(text: str, variables: dict[str, str], env: dict[str, str]) -> str:
    for key, value in variables.items():
        text = text.replace(f"${{{{ matrix.{key} }}}}", str(value))
    for key, value in env.items():
        text = text.replace(f"${{{{ env.{key} }}}}", str(value)).replace(f"${{{key}}}", str(value))
    return text


def commands(script: str) -> list[list[str]]:
    """Each simple command of a `run:` script (heredoc bodies and continuation lines handled; crude, enough here)."""
    lines, heredoc = [], None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        found = re.search(r"<<-?\s*'?(\w+)'?", line)
        if found:
            heredoc = found[1]
            line = line[: found.start()]
        lines.append(line)
    result = []
    for line in lines:
        for part in re.split(r"&&|\|\||;|\|", line):
            words = shlex.split(part.split(">")[0], comments=True) if part.strip() else []
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words = words[1:]
            if words:
                result.append(words)
    return result


def test_the_three_workflows_exist_and_parse():
    found = workflows()
    assert set(found) >= {"ci.yml", "chart.yml", "image.yml"}
    for name, workflow in found.items():
        assert workflow.get("name"), name
        assert True in workflow or "on" in workflow, f"{name} has no trigger"  # YAML 1.1 reads `on` as True
        for job_name, job in workflow["jobs"].items():
            assert job["runs-on"] == "ubuntu-latest", (name, job_name)
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), (name, job_name, step)
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@v?\d[\w.-]*", step["uses"]), step["uses"]


def test_every_run_step_calls_what_exists():
    subcommands = run_sh_commands()
    for name, workflow in workflows().items():
        env = workflow.get("env") or {}
        for job_name, job in workflow["jobs"].items():
            for variables, step in itertools.product(matrices(job), job["steps"]):
                if "run" not in step:
                    continue
                script = expand(step["run"], variables, env)
                assert "${{ matrix." not in script, (name, job_name, script)
                for words in commands(script):
                    where = f"{name} / {job_name}: {' '.join(words)}"
                    program = words[0]
                    if program == "./run.sh":
                        assert words[1] in subcommands, f"{where}: run.sh has no `{words[1]}`"
                    elif "/" in program:
                        assert (REPO_ROOT / program).is_file(), f"{where}: {program} does not exist"
                    else:
                        assert program in EXTERNAL, f"{where}: unknown command {program}"
                    for word in words[1:]:  # files of this repository the command reads
                        if re.match(r"^(helm|scripts|sandbox|\.ci)/", word) or word in ("Dockerfile",
                                                                                         "requirements-dev.txt"):
                            assert (REPO_ROOT / word).exists(), f"{where}: {word} does not exist"


def test_ci_runs_every_test_tier():
    tiers = set(workflows()["ci.yml"]["jobs"]["test"]["strategy"]["matrix"]["tier"])
    on_disk = {p.name for p in (REPO_ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert tiers == on_disk - {"harness"}


def test_chart_renders_every_environment_file():
    environments = workflows()["chart.yml"]["jobs"]["chart"]["strategy"]["matrix"]["environment"]
    assert environments == ["dev", "staging", "production"]


@pytest.mark.parametrize("workflow, variable, tool", [
    ("chart.yml", "HELM_VERSION", "HELM_VERSION"),
    ("chart.yml", "KUBECONFORM_VERSION", "KUBECONFORM_VERSION"),
    ("image.yml", "TRIVY_VERSION", "TRIVY_VERSION"),
])
def test_tool_versions_match_install_tools(workflow, variable, tool):
    assert workflows()[workflow]["env"][variable] == install_tools_version(tool)


def test_kubernetes_schemas_match_requirements_dev():
    pinned = re.search(r"^kubernetes-validate==(\S+)", (REPO_ROOT / "requirements-dev.txt").read_text(), re.M)[1]
    assert workflows()["chart.yml"]["env"]["KUBERNETES_VALIDATE_VERSION"] == pinned


def test_image_workflow_pushes_only_on_version_tags():
    steps = workflows()["image.yml"]["jobs"]["image"]["steps"]
    pushing = [s for s in steps if (s.get("with") or {}).get("push") is True]
    assert len(pushing) == 1
    assert pushing[0]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert pushing[0]["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert any(s.get("run", "").startswith("scripts/docker-security-scan.sh") for s in steps)


def test_the_image_workflow_checks_the_sign_in_files_in_the_built_image():
    """The deployments' [fab] config_file and the login template, loaded in the image the scan builds."""
    steps = workflows()["image.yml"]["jobs"]["image"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    check = next(s for s in steps if s.get("name") == "Sign-in files in the image")
    assert names.index("Sign-in files in the image") > names.index("Build (linux/amd64, loaded for the scan)")
    assert "officeflow:scan" in check["run"]
    for path in ("/opt/officeflow/config/webserver_config.py",
                 "/opt/officeflow/plugins/officeflow_auth/templates/officeflow/login_db.html"):
        assert path in check["run"]
        assert (REPO_ROOT / path.removeprefix("/opt/officeflow/")).is_file(), path
    chart_cfg = (REPO_ROOT / "helm" / "officeflow" / "templates" / "_helpers.tpl").read_text()
    assert "/opt/officeflow/config/webserver_config.py" in chart_cfg  # the path the chart's airflow.cfg names

