"""scripts/k8s-deploy.sh and scripts/deploy.sh against recording stand-ins for helm and kubectl
(tests/harness/fake_cli.py): their arguments, the exact commands each strategy runs, and that --dry-run
changes nothing. Each script runs from a temporary cwd (they find the repository from their own path).

Tests that need an environment's values file point OFFICEFLOW_CHART_DIR at a copy of the chart's
Chart.yaml with empty values-<env>.yaml files; the others use the real chart path."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.harness.fake_cli import FakeCli

ROOT = Path(__file__).resolve().parents[2]
K8S_DEPLOY = ROOT / "scripts" / "k8s-deploy.sh"
DEPLOY = ROOT / "scripts" / "deploy.sh"
REAL_CHART = ROOT / "helm" / "officeflow"
NS = ["--namespace", "officeflow"]
ONLY_API = ("scheduler.enabled=false,dagProcessor.enabled=false,triggerer.enabled=false,"
            "dispatcher.enabled=false,gateway.enabled=false,migrations.enabled=false")
SELECTOR = ["kubectl", "get", "service", "officeflow", "-o",
            r"jsonpath={.spec.selector.officeflow\.io/traffic-group}"]
PREVIOUS = ["kubectl", "get", "service", "officeflow", "-o",
            r"jsonpath={.metadata.annotations.officeflow\.io/previous-traffic-group}"]
SECRET_KEYS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "OFFICEFLOW_DB_URL", "AIRFLOW__API_AUTH__JWT_SECRET",
               "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY", "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY",
               "OFFICEFLOW_ADMIN_PASSWORD")
CHANGING = {("helm", "upgrade"), ("helm", "install"), ("helm", "uninstall"), ("helm", "rollback"),
            ("kubectl", "apply"), ("kubectl", "patch"), ("kubectl", "scale"), ("kubectl", "delete"),
            ("kubectl", "create"), ("kubectl", "annotate"), ("kubectl", "label")}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCli:
    monkeypatch.delenv("OFFICEFLOW_CHART_DIR", raising=False)
    return FakeCli(tmp_path / "bin", ("helm", "kubectl", "curl"))


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A chart directory with values files for dev, staging and production."""
    directory = tmp_path / "chart"
    directory.mkdir()
    (directory / "Chart.yaml").write_text((REAL_CHART / "Chart.yaml").read_text())
    for env in ("dev", "staging", "production"):
        (directory / f"values-{env}.yaml").write_text(f"# {env}\n")
    return directory


def run(cli: FakeCli, script: Path, *args: str, chart: Path | None = None) -> subprocess.CompletedProcess:
    extra = {"OFFICEFLOW_CHART_DIR": str(chart)} if chart else {}
    return cli.run(script, *args, cwd=cli.directory.parent, **extra)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def changes(cli: FakeCli) -> list[list[str]]:
    """The recorded calls that would change the cluster."""
    return [call for call in cli.calls if tuple(call[:2]) in CHANGING]


def helm_install(release: str, chart: Path, *args: str, namespace: str = "officeflow",
                 timeout: str = "10m") -> list[str]:
    return ["helm", "upgrade", "--install", release, str(chart), "--namespace", namespace, "--create-namespace",
            "--wait", "--timeout", timeout, *args]


def secret_check(*flags: str) -> list[str]:
    return ["kubectl", "get", "secret", "officeflow-secrets", "-o", "name", *(flags or NS)]


def rollout(release: str, *flags: str) -> list[str]:
    return ["kubectl", "rollout", "status", "deployment", "--selector", f"app.kubernetes.io/instance={release}",
            "--timeout", "10m", *(flags or NS)]


def ready_query(release: str) -> list[str]:
    return ["kubectl", "get", "deployment", f"{release}-api-server", "-o",
            "jsonpath={.status.availableReplicas}/{.spec.replicas}", *NS]


def assert_usage_error(result: subprocess.CompletedProcess, message: str, cli: FakeCli) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert cli.calls == []


# --- scripts/k8s-deploy.sh --------------------------------------------------------------------------------

def test_k8s_deploy_help(cli: FakeCli) -> None:
    result = ok(run(cli, K8S_DEPLOY, "--help"))
    assert result.stdout.startswith("Usage: scripts/k8s-deploy.sh")
    for option in ("--namespace", "--context", "--kubeconfig", "--values", "--release", "--set", "--image-tag",
                   "--secret", "--timeout", "--dry-run"):
        assert option in result.stdout
    assert cli.calls == []


@pytest.mark.parametrize(("args", "message"), [
    (["--bogus"], "unknown argument: --bogus"),
    (["--namespace"], "--namespace needs a value"),
    (["--set", "novalue"], "--set needs KEY=VALUE"),
    (["--namespace", "Bad_NS"], "invalid namespace"),
    (["--release", "Officeflow"], "invalid release name"),
    (["--image-tag", "1.0 beta"], "invalid image tag"),
    (["--timeout", "soon"], "invalid --timeout"),
    (["--kubeconfig", "/nonexistent/kubeconfig"], "kubeconfig not found"),
    (["--values", "missing.yaml"], "values file not found: missing.yaml"),
])
def test_k8s_deploy_rejects_bad_arguments(cli: FakeCli, args: list[str], message: str) -> None:
    assert_usage_error(run(cli, K8S_DEPLOY, *args), message, cli)


def test_k8s_deploy_environment_without_values_file(cli: FakeCli, chart: Path) -> None:
    (chart / "values-staging.yaml").unlink()
    result = run(cli, K8S_DEPLOY, "--values", "staging", chart=chart)
    assert_usage_error(result, f"values file not found: {chart}/values-staging.yaml", cli)


def test_k8s_deploy_defaults(cli: FakeCli) -> None:
    result = ok(run(cli, K8S_DEPLOY))
    assert cli.calls == [
        secret_check(),
        ["helm", "upgrade", "--install", "officeflow", str(REAL_CHART), "--namespace", "officeflow",
         "--create-namespace", "--wait", "--timeout", "10m"],
        rollout("officeflow"),
    ]
    assert "release officeflow" in result.stdout and "namespace officeflow" in result.stdout
    assert f"+ helm upgrade --install officeflow {REAL_CHART}" in result.stdout


def test_k8s_deploy_every_option(cli: FakeCli, chart: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra values.yaml"
    extra.write_text("apiServer: {replicas: 3}\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = ok(run(cli, K8S_DEPLOY, "--context", "prod", "--namespace", "hr", "--values", "staging",
                    "--values", str(extra), "--set", "apiServer.workers=2", "--set", "a=b,c=d",
                    "--image-tag", "1.4.0", "--kubeconfig", str(kubeconfig), "--release", "office",
                    "--timeout=5m", "--secret", "hr-secrets", chart=chart))
    flags = ["--namespace", "hr", "--context", "prod", "--kubeconfig", str(kubeconfig)]
    assert cli.calls == [
        ["kubectl", "get", "secret", "hr-secrets", "-o", "name", *flags],
        helm_install("office", chart, "-f", str(chart / "values-staging.yaml"), "-f", str(extra),
                     "--set", "apiServer.workers=2", "--set", "a=b,c=d", "--set-string", "image.tag=1.4.0",
                     "--kube-context", "prod", "--kubeconfig", str(kubeconfig), namespace="hr", timeout="5m"),
        ["kubectl", "rollout", "status", "deployment", "--selector", "app.kubernetes.io/instance=office",
         "--timeout", "5m", *flags],
    ]
    assert "image tag 1.4.0" in result.stdout and "context prod" in result.stdout


def test_k8s_deploy_dry_run_renders_server_side_and_only_warns_about_the_secret(cli: FakeCli) -> None:
    cli.reply(["kubectl", "get", "secret"], exit=1,
              stderr='Error from server (NotFound): secrets "officeflow-secrets" not found\n')
    result = ok(run(cli, K8S_DEPLOY, "--dry-run", "--image-tag", "1.4.0"))
    assert cli.calls == [
        secret_check(),
        helm_install("officeflow", REAL_CHART, "--set-string", "image.tag=1.4.0", "--dry-run=server"),
    ]
    assert "warning: Secret officeflow-secrets not found" in result.stderr
    assert "kubectl create secret generic officeflow-secrets" in result.stderr
    assert "nothing was changed" in result.stdout


def test_k8s_deploy_stops_without_the_secret_and_shows_how_to_create_it(cli: FakeCli) -> None:
    cli.reply(["kubectl", "get", "secret"], exit=1, stderr='Error from server (NotFound): secrets "x" not found\n')
    result = run(cli, K8S_DEPLOY, "--namespace", "hr", "--context", "prod")
    assert result.returncode == 1
    assert cli.calls_to("helm") == []
    assert "Secret officeflow-secrets not found in namespace hr" in result.stderr
    assert "kubectl create secret generic officeflow-secrets --namespace hr --context prod" in result.stderr
    for key in SECRET_KEYS:
        assert f"--from-literal={key}=" in result.stderr
    assert "simple_auth_manager" not in result.stderr


def test_the_suggested_secret_command_makes_a_valid_admin_password(cli: FakeCli) -> None:
    """The hint's OFFICEFLOW_ADMIN_PASSWORD, run as printed: the migration Job's bootstrap (exit 2 otherwise)
    accepts it under the password policy, every time."""
    from include.officeflow.auth.passwords import check_password

    cli.reply(["kubectl", "get", "secret"], exit=1, stderr="NotFound\n")
    result = run(cli, K8S_DEPLOY)
    [value] = re.findall(r"--from-literal=OFFICEFLOW_ADMIN_PASSWORD=(.+?)(?: \\)?$", result.stderr, re.M)
    for _ in range(20):
        made = subprocess.run(["bash", "-c", f"printf %s {value}"], capture_output=True, text=True, check=True)
        check_password(made.stdout, username="admin", min_length=12)


def test_the_secret_keys_are_those_the_docs_list() -> None:
    """One list (scripts/lib/deploy-common.sh) for the script's hint; docs/deployment.md names the same keys."""
    section = (ROOT / "docs" / "deployment.md").read_text().split("### The Secret comes first", 1)[1]
    section = section.split("\n#", 1)[0]
    assert set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section)) >= set(SECRET_KEYS)


def test_k8s_deploy_does_not_check_a_secret_the_chart_makes(cli: FakeCli) -> None:
    ok(run(cli, K8S_DEPLOY, "--set", "secrets.create=true"))
    assert cli.calls == [
        helm_install("officeflow", REAL_CHART, "--set", "secrets.create=true"),
        rollout("officeflow"),
    ]


# --- scripts/deploy.sh: arguments -----------------------------------------------------------------------

def test_deploy_help_says_what_each_strategy_needs(cli: FakeCli) -> None:
    result = ok(run(cli, DEPLOY, "--help"))
    out = result.stdout
    assert out.startswith("Usage: scripts/deploy.sh --strategy rolling|blue-green|canary")
    for text in ("rolling", "blue-green", "canary", "--rollback", "--promote", "--abort", "--dry-run",
                 "--canary-mode", "--canary-weight", "--smoke-url", "--scale-down-idle", "ingress-nginx",
                 "Needs nothing beyond the chart", "Needs nothing beyond Services"):
        assert text in out
    assert cli.calls == []


@pytest.mark.parametrize(("args", "message"), [
    ([], "--strategy rolling|blue-green|canary is required"),
    (["--strategy", "fast"], "unknown strategy: fast"),
    (["--strategy", "rolling", "--environment", "production"], "--image-tag is required to deploy"),
    (["--strategy", "rolling", "--image-tag", "1.4.0"], "--environment dev|staging|production is required"),
    (["--strategy", "rolling", "--environment", "qa", "--image-tag", "1"], "unknown environment: qa"),
    (["--strategy", "canary", "--rollback"], "canary has no --rollback"),
    (["--strategy", "rolling", "--promote"], "--promote only applies to --strategy canary"),
    (["--strategy", "blue-green", "--abort"], "--abort only applies to --strategy canary"),
    (["--strategy", "canary", "--promote", "--abort"], "--promote and --abort exclude each other"),
    (["--strategy", "rolling", "--rollback", "--image-tag", "1"], "--image-tag does not apply to --rollback"),
    (["--strategy", "rolling", "--environment", "dev", "--image-tag", "1", "--smoke-url", "http://x"],
     "--smoke-url only applies to --strategy blue-green"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--scale-down-idle"],
     "--scale-down-idle only applies to --strategy blue-green"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--canary-mode", "dns"],
     "unknown --canary-mode: dns"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--canary-mode", "ingress"],
     "--canary-mode ingress needs --canary-weight"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--canary-mode", "ingress",
      "--canary-weight", "150"], "--canary-weight must be a number from 0 to 100"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--canary-weight", "10"],
     "--canary-weight only applies to --canary-mode ingress"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--canary-replicas", "0"],
     "--canary-replicas must be a number from 1 to 99"),
    (["--strategy", "rolling", "--environment", "dev", "--image-tag", "1", "--canary-replicas", "2"],
     "only apply to a canary deploy"),
    (["--strategy", "rolling", "--environment", "dev", "--image-tag", "1", "--release-base", "Office"],
     "invalid --release-base"),
    (["--strategy", "rolling", "--environment", "dev", "--image-tag", "1", "--release-base", "o" * 34],
     "invalid --release-base (at most 33 characters"),
    (["--strategy", "canary", "--environment", "dev", "--image-tag", "1", "--canary-mode", "ingress",
      "--canary-weight", "5", "--host", "HR.example.com"], "invalid --host"),
    (["--strategy", "rolling", "--environment", "dev", "--image-tag", "1", "--namespace"],
     "--namespace needs a value"),
    (["--strategy", "rolling", "--surprise"], "unknown argument: --surprise"),
])
def test_deploy_rejects_bad_arguments(cli: FakeCli, chart: Path, args: list[str], message: str) -> None:
    assert_usage_error(run(cli, DEPLOY, *args, chart=chart), message, cli)


def test_deploy_environment_without_values_file(cli: FakeCli, chart: Path) -> None:
    (chart / "values-production.yaml").unlink()
    result = run(cli, DEPLOY, "--strategy", "rolling", "--environment", "production", "--image-tag", "1.4.0",
                 chart=chart)
    assert_usage_error(result, f"values file not found: {chart}/values-production.yaml", cli)


def test_the_chart_has_the_environment_values_files() -> None:
    """--environment and --values dev|staging|production name these files of the real chart."""
    missing = [f"values-{env}.yaml" for env in ("dev", "staging", "production")
               if not (REAL_CHART / f"values-{env}.yaml").is_file()]
    assert not missing, f"helm/officeflow lacks {missing}"


# --- rolling ----------------------------------------------------------------------------------------------

def test_rolling_deploys_through_k8s_deploy(cli: FakeCli, chart: Path) -> None:
    result = ok(run(cli, DEPLOY, "--strategy", "rolling", "--environment", "production", "--image-tag", "1.4.0",
                    chart=chart))
    assert cli.calls == [
        secret_check(),
        helm_install("officeflow", chart, "-f", str(chart / "values-production.yaml"),
                     "--set-string", "image.tag=1.4.0"),
        rollout("officeflow"),
    ]
    assert (f"+ {K8S_DEPLOY} --release officeflow --namespace officeflow --values production --timeout 10m "
            "--image-tag 1.4.0") in result.stdout
    assert "undo with: scripts/deploy.sh --strategy rolling --rollback" in result.stdout


def test_rolling_passes_the_cluster_options_and_extra_values(cli: FakeCli, chart: Path, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    ok(run(cli, DEPLOY, "--strategy=rolling", "--environment", "staging", "--image-tag", "1.4.0",
           "--namespace", "hr", "--context", "stage", "--kubeconfig", str(kubeconfig), "--release-base", "of",
           "--set", "apiServer.replicas=3", "--secret", "hr-secrets", "--timeout", "15m", chart=chart))
    flags = ["--namespace", "hr", "--context", "stage", "--kubeconfig", str(kubeconfig)]
    assert cli.calls == [
        ["kubectl", "get", "secret", "hr-secrets", "-o", "name", *flags],
        helm_install("of", chart, "-f", str(chart / "values-staging.yaml"), "--set", "apiServer.replicas=3",
                     "--set-string", "image.tag=1.4.0", "--kube-context", "stage", "--kubeconfig", str(kubeconfig),
                     namespace="hr", timeout="15m"),
        ["kubectl", "rollout", "status", "deployment", "--selector", "app.kubernetes.io/instance=of",
         "--timeout", "15m", *flags],
    ]


def test_rolling_rollback(cli: FakeCli) -> None:
    result = ok(run(cli, DEPLOY, "--strategy", "rolling", "--rollback", "--context", "prod"))
    flags = ["--namespace", "officeflow", "--context", "prod"]
    assert cli.calls == [
        ["helm", "rollback", "officeflow", "--wait", "--timeout", "10m", "--namespace", "officeflow",
         "--kube-context", "prod"],
        rollout("officeflow", *flags),
    ]
    assert "rolling back release officeflow" in result.stdout


# --- blue-green -------------------------------------------------------------------------------------------

def test_blue_green_first_deploy_goes_to_blue_and_creates_the_public_service(cli: FakeCli, chart: Path) -> None:
    cli.reply(ready_query("officeflow-blue")[:4], stdout="2/2")
    result = ok(run(cli, DEPLOY, "--strategy", "blue-green", "--environment", "production", "--image-tag", "1.4.0",
                    chart=chart))
    assert cli.calls == [
        [*SELECTOR, "--ignore-not-found", *NS],
        secret_check(),
        helm_install("officeflow-blue", chart, "-f", str(chart / "values-production.yaml"),
                     "--set", "trafficGroup=officeflow-blue", "--set", "ingress.enabled=false",
                     "--set-string", "image.tag=1.4.0"),
        rollout("officeflow-blue"),
        ready_query("officeflow-blue"),
        ["kubectl", "apply", "-f", "-", *NS],
    ]
    out = result.stdout
    assert "+ kubectl apply -f - --namespace officeflow <<EOF" in out
    manifest = out.split("<<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    for line in ("kind: Service", "  name: officeflow", "  namespace: officeflow",
                 "    app.kubernetes.io/component: api-server", "    officeflow.io/traffic-group: officeflow-blue",
                 "      port: 8080", "      targetPort: http"):
        assert line in manifest.splitlines(), manifest
    assert "traffic on officeflow-blue (image tag 1.4.0)" in out


def test_blue_green_second_deploy_goes_to_green_and_switches(cli: FakeCli, chart: Path) -> None:
    cli.reply(SELECTOR, stdout="officeflow-blue")
    cli.reply(ready_query("officeflow-green")[:4], stdout="3/3")
    result = ok(run(cli, DEPLOY, "--strategy", "blue-green", "--environment", "production", "--image-tag", "1.5.0",
                    chart=chart))
    assert cli.calls_to("helm") == [
        helm_install("officeflow-green", chart, "-f", str(chart / "values-production.yaml"),
                     "--set", "trafficGroup=officeflow-green", "--set", "ingress.enabled=false",
                     "--set-string", "image.tag=1.5.0"),
    ]
    patch = cli.calls[-1]
    assert patch[:6] == ["kubectl", "patch", "service", "officeflow", "--type", "merge"]
    assert patch[6] == "-p" and patch[8:] == NS
    assert json.loads(patch[7]) == {
        "metadata": {"annotations": {"officeflow.io/previous-traffic-group": "officeflow-blue"}},
        "spec": {"selector": {"officeflow.io/traffic-group": "officeflow-green"}},
    }
    assert [c for c in cli.calls if c[1] == "apply"] == []
    assert "sends traffic to officeflow-blue" in result.stdout
    assert "deploying image tag 1.5.0 to the idle release officeflow-green" in result.stdout


def test_blue_green_third_deploy_goes_back_to_blue(cli: FakeCli, chart: Path) -> None:
    cli.reply(SELECTOR, stdout="officeflow-green")
    cli.reply(ready_query("officeflow-blue")[:4], stdout="2/2")
    ok(run(cli, DEPLOY, "--strategy", "blue-green", "--environment", "production", "--image-tag", "1.6.0",
           chart=chart))
    assert cli.calls_to("helm")[0][3] == "officeflow-blue"
    assert '"officeflow.io/traffic-group":"officeflow-blue"' in cli.calls[-1][7]


def test_blue_green_smoke_check_and_scale_down_of_the_idle_color(cli: FakeCli, chart: Path) -> None:
    cli.reply(SELECTOR, stdout="officeflow-blue")
    cli.reply(ready_query("officeflow-green")[:4], stdout="2/2")
    ok(run(cli, DEPLOY, "--strategy", "blue-green", "--environment", "production", "--image-tag", "1.5.0",
           "--smoke-url", "http://{release}-api-server:8080/officeflow/health/ready", "--scale-down-idle",
           chart=chart))
    assert cli.calls_to("curl") == [
        ["curl", "-fsS", "-o", "/dev/null", "--max-time", "10", "--retry", "5", "--retry-delay", "3",
         "--retry-all-errors", "http://officeflow-green-api-server:8080/officeflow/health/ready"],
    ]
    assert [c[:2] for c in changes(cli)] == [["helm", "upgrade"], ["kubectl", "patch"], ["helm", "upgrade"]]
    assert cli.calls[-1] == [
        "helm", "upgrade", "officeflow-blue", str(chart), "--reset-then-reuse-values",
        "--set", "apiServer.replicas=0,apiServer.hpa.enabled=false," + ONLY_API, "--wait", "--timeout", "10m", *NS,
    ]


@pytest.mark.parametrize(("reply", "smoke_exit", "message"), [
    ("1/2", 0, "release officeflow-green is not ready (1 of 2 api-server replicas available)"),
    ("2/2", 22, "smoke check of officeflow-green failed"),
])
def test_blue_green_does_not_switch_to_an_unready_color(cli: FakeCli, chart: Path, reply: str, smoke_exit: int,
                                                        message: str) -> None:
    cli.reply(SELECTOR, stdout="officeflow-blue")
    cli.reply(ready_query("officeflow-green")[:4], stdout=reply)
    cli.reply(["curl"], exit=smoke_exit)
    result = run(cli, DEPLOY, "--strategy", "blue-green", "--environment", "production", "--image-tag", "1.5.0",
                 "--smoke-url", "http://{release}-api-server:8080/officeflow/health/ready", chart=chart)
    assert result.returncode == 1
    assert message in result.stderr and "traffic NOT switched" in result.stderr
    assert [c for c in cli.calls if c[:2] == ["kubectl", "patch"]] == []


def test_blue_green_rollback_switches_to_the_recorded_color(cli: FakeCli) -> None:
    cli.reply(SELECTOR, stdout="officeflow-green")
    cli.reply(PREVIOUS, stdout="officeflow-blue")
    cli.reply(["kubectl", "get", "deployment", "officeflow-blue-api-server", "-o", "jsonpath={.spec.replicas}"],
              stdout="2")
    cli.reply(ready_query("officeflow-blue")[:4], stdout="2/2")
    result = ok(run(cli, DEPLOY, "--strategy", "blue-green", "--rollback"))
    assert cli.calls_to("helm") == []
    assert cli.calls[:3] == [
        [*SELECTOR, "--ignore-not-found", *NS],
        [*PREVIOUS, "--ignore-not-found", *NS],
        ["kubectl", "get", "deployment", "officeflow-blue-api-server", "-o", "jsonpath={.spec.replicas}",
         "--ignore-not-found", *NS],
    ]
    assert json.loads(cli.calls[-1][7]) == {
        "metadata": {"annotations": {"officeflow.io/previous-traffic-group": "officeflow-green"}},
        "spec": {"selector": {"officeflow.io/traffic-group": "officeflow-blue"}},
    }
    assert "rolling back the public Service officeflow from officeflow-green to officeflow-blue" in result.stdout


def test_blue_green_rollback_restores_a_scaled_down_color_first(cli: FakeCli) -> None:
    cli.reply(SELECTOR, stdout="officeflow-green")
    cli.reply(PREVIOUS, stdout="officeflow-blue")
    cli.reply(["kubectl", "get", "deployment", "officeflow-blue-api-server", "-o", "jsonpath={.spec.replicas}"],
              stdout="0")
    cli.reply(ready_query("officeflow-blue")[:4], stdout="2/2")
    ok(run(cli, DEPLOY, "--strategy", "blue-green", "--rollback"))
    assert [c[:3] for c in changes(cli)] == [["helm", "rollback", "officeflow-blue"], ["kubectl", "patch", "service"]]
    assert cli.calls_to("helm") == [
        ["helm", "rollback", "officeflow-blue", "--wait", "--timeout", "10m", *NS]]


def test_blue_green_rollback_without_a_recorded_color(cli: FakeCli) -> None:
    cli.reply(SELECTOR, stdout="officeflow-blue")
    result = run(cli, DEPLOY, "--strategy", "blue-green", "--rollback")
    assert result.returncode == 1
    assert "nothing to roll back to" in result.stderr
    assert changes(cli) == []


# --- canary -----------------------------------------------------------------------------------------------

def test_canary_replicas_mode_joins_the_stable_service(cli: FakeCli, chart: Path) -> None:
    cli.reply(["kubectl", "get", "deployment", "officeflow-api-server"], stdout="3")
    result = ok(run(cli, DEPLOY, "--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0",
                    chart=chart))
    assert cli.calls == [
        ["kubectl", "get", "deployment", "officeflow-api-server", "-o", "jsonpath={.spec.replicas}", *NS],
        secret_check(),
        helm_install("officeflow-canary", chart, "-f", str(chart / "values-production.yaml"), "--set", ONLY_API,
                     "--set", "trafficGroup=officeflow,apiServer.service.enabled=false,apiServer.replicas=1,"
                     "apiServer.hpa.enabled=false,ingress.enabled=false", "--set-string", "image.tag=1.5.0"),
        rollout("officeflow-canary"),
    ]
    assert "about 25% of api-server requests (1 of 4 pods)" in result.stdout
    assert "scripts/deploy.sh --strategy canary --environment production --promote" in result.stdout


def test_canary_replicas_mode_share(cli: FakeCli, chart: Path) -> None:
    cli.reply(["kubectl", "get", "deployment", "officeflow-api-server"], stdout="2")
    result = ok(run(cli, DEPLOY, "--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0",
                    "--canary-mode", "replicas", "--canary-replicas", "2", chart=chart))
    assert any("apiServer.replicas=2" in arg for arg in cli.calls_to("helm")[0])
    assert "about 50% of api-server requests (2 of 4 pods)" in result.stdout


def test_canary_needs_the_stable_release(cli: FakeCli, chart: Path) -> None:
    cli.reply(["kubectl", "get", "deployment", "officeflow-api-server"], exit=1)
    result = run(cli, DEPLOY, "--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0",
                 chart=chart)
    assert result.returncode == 1
    assert "deploy it first (--strategy rolling)" in result.stderr
    assert changes(cli) == []


STABLE_VALUES = json.dumps({"image": {"tag": "1.4.0"}, "ingress": {"enabled": True, "host": "hr.example.com",
                                                                   "className": "nginx"}})


@pytest.mark.parametrize(("host_args", "host"), [([], "hr.example.com"), (["--host", "people.example.com"],
                                                                          "people.example.com")])
def test_canary_ingress_mode(cli: FakeCli, chart: Path, host_args: list[str], host: str) -> None:
    cli.reply(["helm", "get", "values", "officeflow", "--all", "-o", "json"], stdout=STABLE_VALUES)
    result = ok(run(cli, DEPLOY, "--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0",
                    "--canary-mode", "ingress", "--canary-weight", "10", *host_args, chart=chart))
    assert cli.calls == [
        ["helm", "get", "values", "officeflow", "--all", "-o", "json", *NS],
        secret_check(),
        helm_install("officeflow-canary", chart, "-f", str(chart / "values-production.yaml"), "--set", ONLY_API,
                     "--set", f"ingress.enabled=true,ingress.canary.enabled=true,ingress.canary.weight=10,"
                     f"ingress.host={host}", "--set-string", "image.tag=1.5.0"),
        rollout("officeflow-canary"),
    ]
    assert f"10% of the requests to {host} go to release officeflow-canary" in result.stdout


def test_canary_ingress_mode_needs_a_stable_ingress(cli: FakeCli, chart: Path) -> None:
    cli.reply(["helm", "get", "values", "officeflow", "--all", "-o", "json"],
              stdout=json.dumps({"ingress": {"enabled": False, "host": ""}}))
    result = run(cli, DEPLOY, "--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0",
                 "--canary-mode", "ingress", "--canary-weight", "10", chart=chart)
    assert result.returncode == 1
    assert "--canary-mode ingress needs one" in result.stderr
    assert changes(cli) == []


@pytest.mark.parametrize(("tag_args", "tag"), [([], "1.5.0"), (["--image-tag", "1.5.1"], "1.5.1")])
def test_canary_promote(cli: FakeCli, chart: Path, tag_args: list[str], tag: str) -> None:
    cli.reply(["helm", "get", "values", "officeflow-canary", "-o", "json"],
              stdout=json.dumps({"image": {"tag": "1.5.0"}, "trafficGroup": "officeflow"}))
    result = ok(run(cli, DEPLOY, "--strategy", "canary", "--environment", "production", "--promote", *tag_args,
                    chart=chart))
    assert cli.calls == [
        ["helm", "get", "values", "officeflow-canary", "-o", "json", *NS],
        secret_check(),
        helm_install("officeflow", chart, "-f", str(chart / "values-production.yaml"),
                     "--set-string", f"image.tag={tag}"),
        rollout("officeflow"),
        ["helm", "uninstall", "officeflow-canary", "--wait", "--timeout", "10m", *NS],
    ]
    assert f"release officeflow runs image tag {tag}; canary officeflow-canary removed" in result.stdout


def test_canary_abort(cli: FakeCli) -> None:
    result = ok(run(cli, DEPLOY, "--strategy", "canary", "--abort"))
    assert cli.calls == [
        ["helm", "get", "values", "officeflow-canary", "-o", "json", *NS],
        ["helm", "uninstall", "officeflow-canary", "--wait", "--timeout", "10m", *NS],
    ]
    assert "canary officeflow-canary removed" in result.stdout


def test_canary_abort_without_a_canary(cli: FakeCli) -> None:
    cli.reply(["helm", "get", "values", "officeflow-canary"], exit=1, stderr="Error: release: not found\n")
    result = ok(run(cli, DEPLOY, "--strategy", "canary", "--abort"))
    assert changes(cli) == []
    assert "nothing to abort" in result.stdout


# --- --dry-run --------------------------------------------------------------------------------------------

DRY_RUNS = {
    "rolling": (["--strategy", "rolling", "--environment", "production", "--image-tag", "1.5.0"], {},
                "+ {k8s_deploy} --release officeflow --namespace officeflow --values production"),
    "rolling-rollback": (["--strategy", "rolling", "--rollback"], {},
                         "+ helm rollback officeflow --wait --timeout 10m --namespace officeflow"),
    "blue-green-first": (["--strategy", "blue-green", "--environment", "production", "--image-tag", "1.5.0"], {},
                         "+ kubectl apply -f - --namespace officeflow <<EOF"),
    "blue-green-second": (["--strategy", "blue-green", "--environment", "production", "--image-tag", "1.5.0",
                           "--scale-down-idle", "--smoke-url", "http://{release}-api-server:8080/"],
                          {"selector": "officeflow-blue"},
                          "+ kubectl patch service officeflow --type merge -p '{\"metadata\""),
    "blue-green-rollback": (["--strategy", "blue-green", "--rollback"],
                            {"selector": "officeflow-green", "previous": "officeflow-blue", "replicas": "0"},
                            "+ helm rollback officeflow-blue --wait"),
    "canary-replicas": (["--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0"],
                        {"stable": "2"}, "+ {k8s_deploy} --release officeflow-canary"),
    "canary-ingress": (["--strategy", "canary", "--environment", "production", "--image-tag", "1.5.0",
                        "--canary-mode", "ingress", "--canary-weight", "20"], {},
                       "ingress.canary.weight=20,ingress.host=hr.example.com"),
    "canary-promote": (["--strategy", "canary", "--environment", "production", "--promote"], {},
                       "+ helm uninstall officeflow-canary --wait --timeout 10m --namespace officeflow"),
    "canary-abort": (["--strategy", "canary", "--abort"], {},
                     "+ helm uninstall officeflow-canary --wait --timeout 10m --namespace officeflow"),
}


@pytest.mark.parametrize("case", DRY_RUNS)
def test_dry_run_prints_the_commands_and_changes_nothing(cli: FakeCli, chart: Path, case: str) -> None:
    args, replies, expected = DRY_RUNS[case]
    if "selector" in replies:
        cli.reply(SELECTOR, stdout=replies["selector"])
    if "previous" in replies:
        cli.reply(PREVIOUS, stdout=replies["previous"])
    if "replicas" in replies:
        cli.reply(["kubectl", "get", "deployment", "officeflow-blue-api-server", "-o", "jsonpath={.spec.replicas}"],
                  stdout=replies["replicas"])
    if "stable" in replies:
        cli.reply(["kubectl", "get", "deployment", "officeflow-api-server"], stdout=replies["stable"])
    cli.reply(["helm", "get", "values", "officeflow", "--all"], stdout=STABLE_VALUES)
    cli.reply(["helm", "get", "values", "officeflow-canary"], stdout=json.dumps({"image": {"tag": "1.5.0"}}))
    result = ok(run(cli, DEPLOY, *args, "--dry-run", chart=chart))
    assert changes(cli) == []
    assert cli.calls_to("curl") == []
    assert all(call[:2] in (["kubectl", "get"], ["helm", "get"]) for call in cli.calls), cli.calls
    assert expected.replace("{k8s_deploy}", str(K8S_DEPLOY)) in result.stdout, result.stdout
    assert result.stdout.startswith("==> DRY RUN")
    assert "DRY RUN: nothing was changed" in result.stdout
    assert all(line.startswith(("+ ", "==> ")) for line in result.stdout.split("<<EOF")[0].splitlines())
