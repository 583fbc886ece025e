"""scripts/docker-build-push.sh and scripts/docker-security-scan.sh: their arguments, the exact docker and trivy
commands they run (recording stand-ins first on PATH: tests/harness/fake_cli.py), and the real cases that work
here: `./run.sh build` with no Docker engine, and a real `trivy config`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.docs import bash_block_with
from tests.harness.fake_cli import FakeCli
from tests.harness.tools import ROOT, run, tool

BUILD = ROOT / "scripts" / "docker-build-push.sh"
SCAN = ROOT / "scripts" / "docker-security-scan.sh"
SCRIPTS = [BUILD, SCAN]
NO_ENGINE = "no Docker engine answers at"


def app_version() -> str:
    text = (ROOT / "helm" / "officeflow" / "Chart.yaml").read_text()
    return re.search(r"^appVersion:\s*[\"']?([^\"'\s]+)", text, re.M)[1]


def git_head() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def build_arg(call: list[str], name: str) -> str:
    values = [call[i + 1].split("=", 1)[1] for i, word in enumerate(call[:-1])
              if word == "--build-arg" and call[i + 1].startswith(f"{name}=")]
    assert len(values) == 1, (name, call)
    return values[0]


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


@pytest.fixture
def docker(tmp_path: Path) -> FakeCli:
    return FakeCli(tmp_path / "bin", ("docker",))


@pytest.fixture
def trivy(tmp_path: Path) -> FakeCli:
    return FakeCli(tmp_path / "bin", ("trivy",))


# --- both scripts ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_and_strict_mode(script):
    result = run(script, "--help")
    assert result.stdout.startswith(f"Usage: scripts/{script.name}")
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    assert os.access(script, os.X_OK)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
@pytest.mark.parametrize("args, message", [(["--bogus"], "unknown argument: --bogus"),
                                           (["extra"], "unknown argument: extra")])
def test_bad_arguments_exit_2_with_a_message(script, args, message):
    result = run(script, *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr and "--help" in result.stderr
    assert result.stdout == ""


def test_shellcheck_is_clean():
    run(tool("shellcheck"), *SCRIPTS, cwd=ROOT)


# --- docker-build-push.sh ----------------------------------------------------------------------------------------
def test_local_only_builds_with_tag_labels_and_args_and_pushes_nothing(docker):
    result = docker.run(BUILD, "--local-only")
    assert result.returncode == 0, result.stderr
    calls = docker.calls_to("docker")
    assert calls[0] == ["docker", "info"]
    [build] = [c for c in calls if c[1] == "build"]
    assert option(build, "--file") == "Dockerfile" and build[-1] == "."
    assert option(build, "--tag") == f"officeflow:{app_version()}"
    assert build_arg(build, "VERSION") == app_version()
    assert build_arg(build, "REVISION") == git_head()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", build_arg(build, "CREATED"))
    assert "@" not in build_arg(build, "SOURCE")  # never a remote URL's credentials
    assert not [c for c in calls if c[1] in ("push", "buildx")]


def test_version_option_sets_tag_and_label(docker):
    assert docker.run(BUILD, "--local-only", "--version", "1.2.3-rc.1").returncode == 0
    [build] = [c for c in docker.calls_to("docker") if c[1] == "build"]
    assert option(build, "--tag") == "officeflow:1.2.3-rc.1"
    assert build_arg(build, "VERSION") == "1.2.3-rc.1"


def test_registry_and_prefix_tag_then_push(docker):
    result = docker.run(BUILD, "--registry", "ghcr.io/", "--prefix", "acme", "--version", "0.3.0")
    assert result.returncode == 0, result.stderr
    calls = [c for c in docker.calls_to("docker") if c[1] in ("build", "push")]
    assert [c[1] for c in calls] == ["build", "push"]
    assert option(calls[0], "--tag") == "ghcr.io/acme/officeflow:0.3.0"
    assert calls[1] == ["docker", "push", "ghcr.io/acme/officeflow:0.3.0"]


def test_with_sandbox_builds_the_sandbox_image_from_the_root(docker):
    assert docker.run(BUILD, "--registry", "registry.example:5000", "--prefix", "team/hr", "--version", "2.0.0",
                      "--with-sandbox").returncode == 0
    builds = [c for c in docker.calls_to("docker") if c[1] == "build"]
    assert [(option(b, "--file"), option(b, "--tag"), b[-1]) for b in builds] == [
        ("Dockerfile", "registry.example:5000/team/hr/officeflow:2.0.0", "."),
        ("sandbox/Dockerfile", "registry.example:5000/team/hr/officeflow-sandbox:2.0.0", ".")]
    assert [c[2] for c in docker.calls_to("docker") if c[1] == "push"] == [
        "registry.example:5000/team/hr/officeflow:2.0.0", "registry.example:5000/team/hr/officeflow-sandbox:2.0.0"]


def test_multi_arch_uses_buildx_for_both_platforms_and_pushes(docker):
    result = docker.run(BUILD, "--multi-arch", "--registry", "ghcr.io", "--prefix", "acme", "--version", "0.3.0")
    assert result.returncode == 0, result.stderr
    calls = docker.calls_to("docker")
    assert ["docker", "buildx", "version"] in calls
    [build] = [c for c in calls if c[1:3] == ["buildx", "build"]]
    assert option(build, "--platform") == "linux/amd64,linux/arm64"
    assert option(build, "--tag") == "ghcr.io/acme/officeflow:0.3.0"
    assert "--push" in build and build[-1] == "."
    assert build_arg(build, "VERSION") == "0.3.0"
    assert not [c for c in calls if c[1] in ("build", "push")]


@pytest.mark.parametrize("args, message", [
    (["--local-only", "--multi-arch"], "--multi-arch pushes"),
    ([], "give --registry R to push, or --local-only"),
    (["--multi-arch"], "give --registry R"),
    (["--local-only", "--version", "not a tag"], "is not a valid image tag"),
    (["--local-only", "--version"], "--version needs a value"),
    (["--registry", "--local-only"], "--registry needs a value"),
])
def test_conflicting_or_incomplete_options_exit_2(docker, args, message):
    result = docker.run(BUILD, *args)
    assert result.returncode == 2 and message in result.stderr
    assert docker.calls_to("docker") == []


def test_no_engine_is_said_clearly(docker):
    docker.reply(["docker", "info"], exit=1, stderr="Cannot connect to the Docker daemon at unix:///x.sock.\n")
    result = docker.run(BUILD, "--local-only", DOCKER_HOST="tcp://builder.example:2376")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 2
    assert f"{NO_ENGINE} tcp://builder.example:2376" in lines[0] and "DOCKER_HOST" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert docker.calls_to("docker") == [["docker", "info"]]


def test_multi_arch_without_buildx_is_said_clearly(docker):
    docker.reply(["docker", "buildx"], exit=1, stderr="docker: unknown command: docker buildx\n")
    result = docker.run(BUILD, "--multi-arch", "--registry", "ghcr.io")
    assert result.returncode == 1 and "--multi-arch needs docker buildx" in result.stderr
    assert not [c for c in docker.calls_to("docker") if "build" in c[1:3]]


def test_run_sh_build_without_a_docker_engine(tmp_path):
    """The real thing: ./run.sh build -> scripts/docker-build-push.sh --local-only -> the real docker CLI, with no
    engine (none on this machine; where one answers, DOCKER_HOST points at a socket nobody listens on)."""
    env = dict(os.environ)
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True, env=env).returncode == 0:
        env["DOCKER_HOST"] = f"unix://{tmp_path}/no-engine.sock"
    result = subprocess.run([str(ROOT / "run.sh"), "build"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    message = result.stderr.strip()
    if shutil.which("docker"):
        assert f"{NO_ENGINE} {env.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}" in message
    else:
        assert "the docker CLI is not installed" in message
    assert len(message.splitlines()) <= 2 and "Traceback" not in result.stdout + message


def documented_block(fragment: str) -> str:
    return bash_block_with("docs/deployment.md", fragment)


def test_the_documented_build_examples_run_these_docker_commands(docker):
    block = documented_block("--multi-arch")
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    results = {}
    for line in lines:
        before = len(docker.calls)
        result = docker.run("bash", "-euo", "pipefail", "-c", line, cwd=ROOT)
        assert result.returncode == 0, (line, result.stderr)
        results[line] = [c[1:] for c in docker.calls[before:] if c[1] != "info" and c[1:3] != ["buildx", "version"]]
    tagged = {line: [option(c, "--tag") if "--tag" in c else " ".join(c) for c in calls]
              for line, calls in results.items()}
    assert list(tagged.values()) == [
        [f"officeflow:{app_version()}"],
        ["officeflow:0.2.0", "officeflow-sandbox:0.2.0"],
        ["ghcr.io/my-org/officeflow:0.2.0", "push ghcr.io/my-org/officeflow:0.2.0"],
        ["ghcr.io/my-org/officeflow:0.2.0"],
    ]
    multi = results[lines[3]][0]
    assert multi[:2] == ["buildx", "build"] and "--push" in multi


# --- docker-security-scan.sh -------------------------------------------------------------------------------------
def scans(fake: FakeCli) -> list[list[str]]:
    return [c[1:] for c in fake.calls_to("trivy")]


SEVERITY = ["--severity", "HIGH,CRITICAL", "--exit-code", "1"]


CONFIG = ["config", *SEVERITY, "--skip-check-update", "--ignorefile", ".trivyignore.yaml"]


def test_scan_runs_config_and_image_scans(trivy):
    result = trivy.run(SCAN)
    assert result.returncode == 0, result.stderr
    assert scans(trivy) == [
        [*CONFIG, "Dockerfile"],
        [*CONFIG, "sandbox/Dockerfile"],
        [*CONFIG, "helm/officeflow"],
        ["image", *SEVERITY, "--ignore-unfixed", "--ignorefile", ".trivyignore.yaml", f"officeflow:{app_version()}"],
    ]


def test_accepted_findings_are_scoped_and_justified():
    accepted = yaml.safe_load((ROOT / ".trivyignore.yaml").read_text())
    for kind, entries in accepted.items():
        for entry in entries:
            assert entry.get("paths") and len(entry.get("statement", "")) > 40, (kind, entry)


def test_scan_config_only_and_image_option(trivy):
    assert trivy.run(SCAN, "--config-only").returncode == 0
    assert [s[0] for s in scans(trivy)] == ["config", "config", "config"]
    assert trivy.run(SCAN, "--image", "ghcr.io/acme/officeflow:0.3.0").returncode == 0
    assert scans(trivy)[-1][0] == "image" and scans(trivy)[-1][-1] == "ghcr.io/acme/officeflow:0.3.0"


@pytest.mark.parametrize("failing", ["image", "config"])
def test_scan_propagates_a_finding_and_still_runs_the_other_scans(trivy, failing):
    trivy.reply(["trivy", failing], exit=1, stdout="Total: 1 (HIGH: 1, CRITICAL: 0)\n")
    result = trivy.run(SCAN)
    assert result.returncode == 1
    assert len(scans(trivy)) == 4
    assert f"failed: {failing}" in result.stderr


def test_scan_argument_errors(trivy):
    for args, message in ((["--image"], "--image needs a value"),
                          (["--config-only", "--image", "x:1"], "exclude each other"),
                          (["--config-target", "no/such/dir"], "does not exist")):
        result = trivy.run(SCAN, *args)
        assert result.returncode == 2 and message in result.stderr
    assert scans(trivy) == []


def test_scan_without_trivy_says_how_to_get_it(tmp_path):
    path = ":".join(d for d in os.environ["PATH"].split(":") if d and not (Path(d) / "trivy").exists())
    env = {**os.environ, "PATH": path, "OFFICEFLOW_TOOLS_DIR": str(tmp_path / "no-tools")}
    result = subprocess.run([str(SCAN), "--config-only"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "trivy is not installed: ./run.sh tools" in result.stderr


def test_scan_config_only_with_the_real_trivy(tmp_path):
    """The documented scan, verbatim, with the real trivy (offline): the Dockerfiles have no HIGH/CRITICAL finding."""
    trivy_bin = tool("trivy")
    env = {**os.environ, "PATH": f"{trivy_bin.parent}:{os.environ['PATH']}", "TRIVY_CACHE_DIR": str(tmp_path)}
    block = documented_block("docker-security-scan.sh --config-only")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "clean: no HIGH or CRITICAL findings" in result.stderr


def test_scan_of_the_dockerfiles_and_the_chart_with_the_real_trivy(tmp_path):
    """Every default config target (the chart too), with the accepted findings of .trivyignore.yaml."""
    trivy_bin = tool("trivy")
    env = {**os.environ, "PATH": f"{trivy_bin.parent}:{os.environ['PATH']}", "TRIVY_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([str(SCAN), "--config-only"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert result.stderr.count("trivy config") == 3
