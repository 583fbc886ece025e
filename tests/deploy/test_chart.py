"""The Helm chart, statically: helm lint, helm template per environment, kubeconform (strict, offline
schemas) and what must hold in the rendered manifests. Installing it for real: test_cluster.py."""

from __future__ import annotations

import configparser
import ipaddress
import json
import re

import pytest
import yaml

from include.officeflow.auth.permissions import ROLES
from tests.harness.chart import CHART, ENVIRONMENTS, find, helm_template, kubeconform, render, values_file
from tests.harness.tools import ROOT, run, tool

WORKLOADS = ("api-server", "scheduler", "dag-processor", "triggerer", "dispatcher")
AUTH_MANAGER = "plugins.officeflow_auth.manager.OfficeFlowFabAuthManager"
FAB_CONFIG = "/opt/officeflow/config/webserver_config.py"
BOOTSTRAP = ("airflow db migrate && python -m include.officeflow.store migrate"
             " && python -m plugins.officeflow_auth.roles bootstrap")


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def environment(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def docs(environment) -> list[dict]:
    return render("-f", str(values_file(environment)))


def airflow_cfg(docs: list[dict]) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(find(docs, "ConfigMap", "officeflow-airflow-config")["data"]["airflow.cfg"])
    return cfg


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    """Every pod spec the chart makes: the Deployments, the migration Job and the worker pod template."""
    specs = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")}
    template = yaml.safe_load(find(docs, "ConfigMap", "officeflow-pod-template")["data"]["pod_template.yaml"])
    specs["worker pod template"] = template["spec"]
    return specs


def test_helm_lint_strict(environment):
    run(tool("helm"), "lint", "--strict", CHART, "-f", values_file(environment))


def test_every_manifest_is_valid_kubernetes_1_37(environment, kube_schemas):
    manifests = helm_template("-f", str(values_file(environment))).stdout
    result = kubeconform(manifests, kube_schemas)
    assert re.search(r"Invalid: 0, Errors: 0, Skipped: 0", result.stdout), result.stdout
    pod = find(render("-f", str(values_file(environment))), "ConfigMap", "officeflow-pod-template")
    assert "Valid: 1," in kubeconform(pod["data"]["pod_template.yaml"], kube_schemas).stdout  # the worker pod


def test_kubeconform_rejects_an_unknown_field(kube_schemas):
    bad = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectorr: {a: b}, ports: [{port: 80}]}\n"
    result = kubeconform(bad, kube_schemas, check=False)
    assert result.returncode == 1 and "selectorr" in result.stdout


def test_the_executor_is_kubernetes_with_the_pod_template_where_airflow_reads_it(docs):
    cfg = airflow_cfg(docs)
    assert cfg["core"]["executor"] == "KubernetesExecutor"
    template_path = cfg["kubernetes_executor"]["pod_template_file"]
    scheduler = find(docs, "Deployment", "officeflow-scheduler")["spec"]["template"]["spec"]
    mount = next(m for m in scheduler["containers"][0]["volumeMounts"] if m["name"] == "pod-template")
    volume = next(v for v in scheduler["volumes"] if v["name"] == "pod-template")
    assert template_path == f"{mount['mountPath']}/pod_template.yaml"
    assert volume["configMap"]["name"] == "officeflow-pod-template"
    assert cfg["kubernetes_executor"]["namespace"] == "officeflow"
    assert cfg["core"]["execution_api_server_url"] == (
        "http://officeflow-api-server.officeflow.svc.cluster.local:8080/execution/")
    for name, spec in pod_specs(docs).items():  # every pod reads the same airflow.cfg
        if name == "officeflow-migrate":
            continue  # a pre-install hook: runs before the ConfigMaps exist, needs only the DB URLs
        mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/opt/airflow/airflow.cfg"]["subPath"] == "airflow.cfg", name


def test_sign_in_is_officeflows_fab_auth_manager_with_the_settings_file_in_the_image(docs):
    cfg = airflow_cfg(docs)
    assert cfg["core"]["auth_manager"] == AUTH_MANAGER
    assert cfg["fab"]["config_file"] == FAB_CONFIG
    # FAB skips a config file it cannot find, silently: the path must be the repository's file as the image
    # holds it (the Dockerfile's WORKDIR /opt/officeflow, COPY config/ config/; test_image.py checks the context).
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /opt/officeflow" in dockerfile and "COPY config/ config/" in dockerfile
    assert (ROOT / FAB_CONFIG.removeprefix("/opt/officeflow/")).is_file()
    module, _, name = cfg["core"]["auth_manager"].rpartition(".")
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file() and f"class {name}(" in (
        ROOT / (module.replace(".", "/") + ".py")).read_text()
    # nothing is read from Secret files any more (the simple auth manager's passwords file is gone): every
    # secret is an environment variable from the Secret
    for name, spec in pod_specs(docs).items():
        assert not [v for v in spec.get("volumes", []) if "secret" in v], name
        assert not [m for c in spec["containers"] for m in c.get("volumeMounts", []) if "auth" in m["mountPath"]]
    assert "simple_auth" not in helm_template("-f", str(values_file("dev"))).stdout


def test_airflow_config_values_merge_into_the_charts_sections():
    """One section each (Airflow refuses a section written twice); a value from airflow.config wins, also for the
    migration Job's auth manager."""
    docs = render("--set", "airflow.config.core.parallelism=64",
                  "--set", "airflow.config.fab.session_lifetime_minutes=480",
                  "--set", "airflow.config.core.auth_manager=my.AuthManager",
                  "--set", "airflow.config.smtp.smtp_port=2525")
    text = find(docs, "ConfigMap", "officeflow-airflow-config")["data"]["airflow.cfg"]
    cfg = configparser.ConfigParser(interpolation=None, strict=True)
    cfg.read_string(text)  # strict: a duplicate section or option fails
    assert cfg["core"]["parallelism"] == "64" and cfg["core"]["executor"] == "KubernetesExecutor"
    assert cfg["fab"]["session_lifetime_minutes"] == "480" and cfg["fab"]["config_file"] == FAB_CONFIG
    assert cfg["core"]["auth_manager"] == "my.AuthManager" and cfg["smtp"]["smtp_port"] == "2525"
    env = {e["name"]: e["value"] for e in find(docs, "Job", "officeflow-migrate")["spec"]["template"]["spec"][
        "containers"][0]["env"]}
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "my.AuthManager" and env["AIRFLOW__FAB__CONFIG_FILE"] == FAB_CONFIG


def test_the_worker_pod_template(docs):
    template = yaml.safe_load(find(docs, "ConfigMap", "officeflow-pod-template")["data"]["pod_template.yaml"])
    spec = template["spec"]
    assert [c["name"] for c in spec["containers"]] == ["base"]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "officeflow-worker" and spec["automountServiceAccountToken"] is False
    base = spec["containers"][0]
    assert base["command"] == ["tini", "--"]  # the executor's args are the whole command
    assert base["image"] == "officeflow:0.2.0"


def test_rbac_lets_only_the_scheduler_manage_worker_pods(docs):
    roles = [d for d in docs if d["kind"] in ("Role", "ClusterRole")]
    bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert [r["kind"] for r in roles] == ["Role"] and [b["kind"] for b in bindings] == ["RoleBinding"]
    assert roles[0]["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get", "list", "watch", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": "officeflow-scheduler",
                                        "namespace": "officeflow"}]
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    assert {n for n, a in accounts.items() if a["automountServiceAccountToken"]} == {"officeflow-scheduler"}
    specs = pod_specs(docs)
    assert specs["officeflow-scheduler"]["serviceAccountName"] == "officeflow-scheduler"
    assert all(s["serviceAccountName"] != "officeflow-scheduler" for n, s in specs.items()
               if n != "officeflow-scheduler")


def test_probes(docs):
    api = find(docs, "Deployment", "officeflow-api-server")["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/officeflow/health/live"
    assert api["startupProbe"]["httpGet"]["path"] == "/officeflow/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/officeflow/health/ready"
    for component, job in (("scheduler", "SchedulerJob"), ("dag-processor", "DagProcessorJob"),
                           ("triggerer", "TriggererJob")):
        container = find(docs, "Deployment", f"officeflow-{component}")["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["exec"]["command"][:5] == ["airflow", "jobs", "check", "--job-type", job]


def test_every_container_has_requests_and_limits_and_runs_as_non_root(docs):
    for name, spec in pod_specs(docs).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert "memory" in container["resources"]["limits"], name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_no_secret_value_reaches_a_configmap_or_an_env_literal():
    secret_values = {"AIRFLOW__CORE__FERNET_KEY": "fernet-Zq81-canary", "OFFICEFLOW_DB_URL": "postgresql://u:pw-canary@db/x",
                     "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-canary-77", "OFFICEFLOW_ADMIN_PASSWORD": "Root-Pw-canary-9"}
    args = ["--set", "secrets.create=true"] + [a for k, v in secret_values.items()
                                              for a in ("--set-string", f"secrets.data.{k}={v}")]
    docs = render(*args)
    for doc in docs:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        assert not any(v in text for v in secret_values.values()), doc["metadata"]["name"]
    for name, spec in pod_specs(docs).items():
        for container in spec["containers"]:
            literal = {e["name"] for e in container.get("env", []) if "valueFrom" not in e}
            # the migration Job runs before the ConfigMaps exist: it names the auth manager itself; the worker
            # pods' insights connection holds only a $(reference) to the Secret's password (test below)
            allowed = {"OFFICEFLOW_ENV"} | ({"AIRFLOW__CORE__AUTH_MANAGER", "AIRFLOW__FAB__CONFIG_FILE"}
                                            if name == "officeflow-migrate" else set()) | (
                {INSIGHTS_CONNECTION} if name == "worker pod template" else set()) | (
                {"PROMETHEUS_MULTIPROC_DIR"} if name == "officeflow-api-server" else set())
            assert literal <= allowed, f"{name}: settings come from the ConfigMap and the Secret"
            assert {"secretRef": {"name": "officeflow-secrets"}} in container["envFrom"], name
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not [k for k in doc["data"] if re.search(r"SECRET|PASSWORD|TOKEN|FERNET|_KEY$|_CONN$", k)]


INSIGHTS_CONNECTION = "AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API"


def test_worker_pods_reach_the_rest_api_as_the_insights_service_user_with_the_secrets_password():
    env = {e["name"]: e for e in pod_specs(render(namespace="people-ops"))["worker pod template"]["containers"][0]
           ["env"]}
    connection = json.loads(env[INSIGHTS_CONNECTION]["value"])
    # Kubernetes replaces $(VAR) with the variable of the Secret (envFrom comes first); the chart writes no password
    assert connection == {"conn_type": "http", "login": "officeflow-insights",
                          "host": "http://officeflow-api-server.people-ops.svc.cluster.local:8080",
                          "password": "$(OFFICEFLOW_INSIGHTS_API_PASSWORD)"}
    # the migration Job's bootstrap makes that user from the same variable (tests/integration test_auth_roles)
    off = pod_specs(render("--set", "insights.enabled=false"))["worker pod template"]["containers"][0]
    assert INSIGHTS_CONNECTION not in {e["name"] for e in off.get("env", [])}


def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(docs):
    job = find(docs, "Job", "officeflow-migrate")
    account = find(docs, "ServiceAccount", "officeflow-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # what the Job needs exists before it: its ServiceAccount is an earlier hook, the Secret is made first
    assert account["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"])
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "officeflow-migrate"
    assert spec["containers"][0]["envFrom"] == [{"secretRef": {"name": "officeflow-secrets"}}]
    assert not [v for v in spec["volumes"] if "configMap" in v]
    container = spec["containers"][0]
    assert container["command"] == ["tini", "--", "sh", "-c"] and container["args"] == [BOOTSTRAP]
    # without airflow.cfg (a ConfigMap, made after the hook): the auth manager and its FAB settings as variables
    # (airflow db migrate makes FAB's tables; the bootstrap reads the FAB settings), and the settings values,
    # so the password policy the admin's password meets is the one the api-server applies
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == AUTH_MANAGER and env["AIRFLOW__FAB__CONFIG_FILE"] == FAB_CONFIG
    settings = find(docs, "ConfigMap", "officeflow-env")["data"]
    for key, value in env.items():
        if key.startswith("OFFICEFLOW_AUTH_"):
            assert settings[key] == value, key
    custom = render("--set-string", "settings.OFFICEFLOW_PASSWORD_MIN_LENGTH=16")
    job_env = find(custom, "Job", "officeflow-migrate")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "OFFICEFLOW_PASSWORD_MIN_LENGTH", "value": "16"} in job_env


def test_environments_differ_where_they_should():
    dev, prod = render("-f", str(values_file("dev"))), render("-f", str(values_file("production")))
    assert find(dev, "Deployment", "officeflow-api-server")["spec"]["replicas"] == 1
    assert find(prod, "Deployment", "officeflow-api-server")["spec"]["replicas"] == 3
    assert find(prod, "HorizontalPodAutoscaler", "officeflow-api-server")["spec"]["maxReplicas"] == 10
    assert not [d for d in dev if d["kind"] == "HorizontalPodAutoscaler"]
    assert {d["metadata"]["name"] for d in prod if d["kind"] == "PodDisruptionBudget"} == {
        "officeflow-api-server", "officeflow-scheduler", "officeflow-triggerer", "officeflow-dispatcher"}
    assert find(prod, "Ingress", "officeflow")["spec"]["tls"][0]["hosts"] == ["officeflow.example.com"]
    assert airflow_cfg(prod)["logging"]["remote_base_log_folder"] == "s3://officeflow-documents/logs"
    assert find(prod, "ConfigMap", "officeflow-env")["data"]["OFFICEFLOW_DOCUMENTS_URL"] == "s3://officeflow-documents/documents"


def test_production_requires_mfa_of_administrators_and_believes_the_ingress_controller():
    prod_env = find(render("-f", str(values_file("production"))), "ConfigMap", "officeflow-env")["data"]
    roles = json.loads(prod_env["OFFICEFLOW_AUTH_MFA_REQUIRED_ROLES"])
    assert set(roles) == {"OfficeFlow Admin", "Admin"} and set(roles) <= set(ROLES) | {"Admin"}
    for environment in ("staging", "production"):  # both behind an Ingress
        env = find(render("-f", str(values_file(environment))), "ConfigMap", "officeflow-env")["data"]
        proxies = [ipaddress.ip_network(cidr) for cidr in json.loads(env["OFFICEFLOW_AUTH_TRUSTED_PROXIES"])]
        assert proxies and all(net.is_private for net in proxies), environment
    dev_env = find(render("-f", str(values_file("dev"))), "ConfigMap", "officeflow-env")["data"]
    assert "OFFICEFLOW_AUTH_MFA_REQUIRED_ROLES" not in dev_env


def test_network_policies_default_deny_and_open_only_the_api_server(docs):
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["officeflow-default-deny"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in policies["officeflow-default-deny"]
    assert policies["officeflow-api-server"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    egress_ports = {p["port"] for rule in policies["officeflow-egress"]["egress"] for p in rule.get("ports", [])}
    assert {53, 8080, 5432, 6379, 9092, 443} <= egress_ports


def test_a_canary_release_joins_the_stable_traffic_group_or_gets_a_weighted_ingress():
    stable = render()
    canary = render("--set", "trafficGroup=officeflow,apiServer.service.enabled=false,scheduler.enabled=false",
                    release="officeflow-canary")
    pod_labels = find(canary, "Deployment", "officeflow-canary-api-server")["spec"]["template"]["metadata"]["labels"]
    selector = find(stable, "Service", "officeflow-api-server")["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    assert not [d for d in canary if d["kind"] == "Service"]
    assert not [d for d in canary if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-scheduler")]
    weighted = render("--set", "ingress.enabled=true,ingress.canary.enabled=true,ingress.canary.weight=20",
                      release="officeflow-canary")
    annotations = find(weighted, "Ingress", "officeflow-canary")["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "20"


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "apiServer.replicas=-1"], "/apiServer/replicas"),
    (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    (["--set", "ingress.canary.weight=150"], "/ingress/canary/weight"),
    (["--set", "ingress.host=Not A Host"], "/ingress/host"),
    (["--set", "schedulr.enabled=true"], "schedulr"),
    (["--set", "apiServer.resources=null"], "apiServer"),
    (["--set", "existingSecret="], "existingSecret"),
    (["--set", "external.kafka.bootstrapServers=broker"], "/external/kafka/bootstrapServers"),
    (["--set", "events.relay.metricsPort=0"], "/events/relay/metricsPort"),
    (["--set", "events.relay.replicas=-2"], "/events/relay/replicas"),
    (["--set", "events.outboxRetentionDays=0"], "/events/outboxRetentionDays"),
    # secrets belong in the Secret, not in the env ConfigMap
    (["--set", "settings.OFFICEFLOW_ADMIN_PASSWORD=Pw-1234567890"], "OFFICEFLOW_ADMIN_PASSWORD"),
    (["--set", "settings.OFFICEFLOW_SSO_CLIENT_SECRET=x"], "OFFICEFLOW_SSO_CLIENT_SECRET"),
    (["--set", "settings.AIRFLOW_CONN_SMTP_DEFAULT=smtp://u:p@h"], "AIRFLOW_CONN_SMTP_DEFAULT"),
])
def test_the_schema_rejects_bad_values_with_the_field_named(args, message):
    result = helm_template(*args, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr


RELAY = ("--set", "events.relay.enabled=true,events.relay.replicas=3,events.relay.kafkaSecret.name=kafka-conn",
         "--set-string", "events.relay.podAnnotations.prometheus\\.io/scrape=true")


def test_the_events_relay_is_off_until_kafka_is_configured(docs):
    assert not [d for d in docs if "events-relay" in d["metadata"]["name"]]
    env = find(docs, "ConfigMap", "officeflow-env")["data"]
    assert env["OFFICEFLOW_EVENTS_OUTBOX_RETENTION_DAYS"] == "7"  # the purge setting, read by a relay only
    assert "OFFICEFLOW_EVENTS_RELAY_METRICS_PORT" not in env


def test_the_events_relay_deployment(kube_schemas):
    docs = render(*RELAY)
    relay = find(docs, "Deployment", "officeflow-events-relay")
    assert relay["spec"]["replicas"] == 3  # safe: each relay claims its own rows (SKIP LOCKED + lease)
    pod = relay["spec"]["template"]
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["command"] == ["tini", "--"]
    assert container["args"] == ["python", "-m", "plugins.officeflow_events.relay"]
    assert spec["serviceAccountName"] == "officeflow-component" and spec["automountServiceAccountToken"] is False
    # the store and every other setting as the other components get them; the Kafka connection from its Secret
    assert container["envFrom"] == [{"configMapRef": {"name": "officeflow-env"}},
                                    {"secretRef": {"name": "officeflow-secrets"}}]
    assert container["env"] == [{"name": "AIRFLOW_CONN_KAFKA_DEFAULT", "valueFrom": {"secretKeyRef": {
        "name": "kafka-conn", "key": "AIRFLOW_CONN_KAFKA_DEFAULT"}}}]
    # /metrics and /healthz on the port the relay reads from the ConfigMap, listening beyond localhost
    env = find(docs, "ConfigMap", "officeflow-env")["data"]
    assert env["OFFICEFLOW_EVENTS_RELAY_METRICS_HOST"] == "0.0.0.0"  # noqa: S104 (the probes reach the pod's IP)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9465, "protocol": "TCP"}]
    assert env["OFFICEFLOW_EVENTS_RELAY_METRICS_PORT"] == "9465"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}, probe
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys() and container["resources"]["limits"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert find(docs, "PodDisruptionBudget", "officeflow-events-relay")["spec"]["maxUnavailable"] == 1
    policy = find(docs, "NetworkPolicy", "officeflow-events-relay-metrics")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "events-relay"
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9465}]}]
    egress = find(docs, "NetworkPolicy", "officeflow-egress")["spec"]["egress"]
    assert 9092 in {p["port"] for rule in egress for p in rule.get("ports", [])}  # Kafka
    result = kubeconform(helm_template(*RELAY).stdout, kube_schemas)
    assert re.search(r"Invalid: 0, Errors: 0, Skipped: 0", result.stdout), result.stdout
    run(tool("helm"), "lint", "--strict", CHART, "--set", "events.relay.enabled=true")


def test_the_events_relay_settings_follow_the_values():
    docs = render("--set", "events.relay.enabled=true,events.relay.metricsPort=9100,events.outboxRetentionDays=30",
                  "--set", "external.kafka.bootstrapServers=kafka-1:9092")
    container = find(docs, "Deployment", "officeflow-events-relay")["spec"]["template"]["spec"]["containers"][0]
    assert "env" not in container  # no Secret of its own: the connection from the ConfigMap / the main Secret
    assert container["ports"][0]["containerPort"] == 9100
    env = find(docs, "ConfigMap", "officeflow-env")["data"]
    assert env["OFFICEFLOW_EVENTS_RELAY_METRICS_PORT"] == "9100"
    assert env["OFFICEFLOW_EVENTS_OUTBOX_RETENTION_DAYS"] == "30"
    assert json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]["bootstrap.servers"] == "kafka-1:9092"
    policy = find(docs, "NetworkPolicy", "officeflow-events-relay-metrics")["spec"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9100}]
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget" and "relay" in d["metadata"]["name"]]


def test_api_server_workers_share_their_metrics_in_the_pods_tmp(docs):
    """/officeflow/metrics sums every worker's counters from PROMETHEUS_MULTIPROC_DIR, a folder of the pod's /tmp
    emptyDir (empty at each pod start); only the api-server serves them."""
    spec = find(docs, "Deployment", "officeflow-api-server")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/officeflow-prometheus"} in container["env"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
    assert "--workers" in container["args"]
    for name, other in pod_specs(docs).items():
        if name != "officeflow-api-server":
            assert not [e for c in other["containers"] for e in c.get("env", [])
                        if e["name"] == "PROMETHEUS_MULTIPROC_DIR"], name


def test_airflows_own_metrics_go_to_the_otlp_endpoint_when_given(docs):
    assert "metrics" not in airflow_cfg(docs)  # off by default: no collector to send to
    assert not [k for k in find(docs, "ConfigMap", "officeflow-env")["data"] if k.startswith("OTEL_")]
    endpoint = "http://otel-collector.monitoring:4318/v1/metrics"
    on = render("--set", f"metrics.airflow.otlpEndpoint={endpoint},metrics.airflow.intervalMilliseconds=15000")
    cfg = airflow_cfg(on)
    assert cfg["metrics"]["otel_on"] == "True" and cfg["metrics"]["otel_prefix"] == "airflow"
    assert cfg["metrics"]["legacy_names_on"] == "False"  # the scheduler fails on ti.deferred's legacy name
    env = find(on, "ConfigMap", "officeflow-env")["data"]
    assert env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] == endpoint and env["OTEL_METRIC_EXPORT_INTERVAL"] == "15000"
    template = yaml.safe_load(find(on, "ConfigMap", "officeflow-pod-template")["data"]["pod_template.yaml"])
    assert {"configMapRef": {"name": "officeflow-env"}} in template["spec"]["containers"][0]["envFrom"]  # tasks too
    result = helm_template("--set", "metrics.airflow.otlpEndpoint=otel:4318", check=False)
    assert result.returncode != 0 and "otlpEndpoint" in result.stderr


def test_traces_go_to_the_otlp_endpoint_when_given(docs):
    assert "traces" not in airflow_cfg(docs)  # off by default, as in dev mode
    endpoint = "http://otel-collector.monitoring:4318/v1/traces"
    on = render("--set", f"tracing.otlpEndpoint={endpoint},tracing.sampleRatio=0.25")
    assert airflow_cfg(on)["traces"] == {"otel_on": "True"}
    env = find(on, "ConfigMap", "officeflow-env")["data"]
    assert {k: v for k, v in env.items() if k.startswith("OTEL_")} == {
        "OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_SERVICE_NAME": "officeflow", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    for bad in ("tracing.otlpEndpoint=otel:4318", "tracing.sampleRatio=2"):
        result = helm_template("--set", f"tracing.otlpEndpoint={endpoint}", "--set-string", bad, check=False)
        assert result.returncode != 0 and bad.split("=")[0].split(".")[1] in result.stderr, bad


# --- the standalone edge gateway (gateway.enabled) ------------------------------------------------------------

GATEWAY = ("--set", "gateway.enabled=true,ingress.enabled=true")


def container_of(docs: list[dict], deployment: str) -> dict:
    return find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def test_the_edge_gateway_is_off_by_default(docs):
    assert not [d for d in docs if d["metadata"]["name"].endswith("-gateway")]
    assert not [k for k in find(docs, "ConfigMap", "officeflow-env")["data"] if k.startswith("OFFICEFLOW_GATEWAY_")]
    for ingress in (d for d in docs if d["kind"] == "Ingress"):  # every path to the api-server, webhooks too
        paths = ingress["spec"]["rules"][0]["http"]["paths"]
        assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [("/", "officeflow-api-server")]


def test_the_edge_gateway_deployment_service_and_hpa(kube_schemas):
    docs = render(*GATEWAY)
    deployment = find(docs, "Deployment", "officeflow-gateway")
    pod, api_pod = deployment["spec"]["template"], find(docs, "Deployment", "officeflow-api-server")["spec"]["template"]
    container, api = pod["spec"]["containers"][0], api_pod["spec"]["containers"][0]
    assert container["command"] == ["tini", "--"]
    assert container["args"] == ["python", "-m", "plugins.officeflow_gateway.edge"]
    # the api-server's pod otherwise: its ServiceAccount (no token), settings, secrets, security contexts, volumes
    for key in ("serviceAccountName", "automountServiceAccountToken", "securityContext", "volumes"):
        assert pod["spec"][key] == api_pod["spec"][key], key
    for key in ("envFrom", "securityContext", "volumeMounts", "image"):
        assert container[key] == api[key], key
    assert pod["spec"]["serviceAccountName"] == "officeflow-api-server"
    assert pod["spec"]["automountServiceAccountToken"] is False
    # its workers share their counters through the pod's /tmp emptyDir, as the api-server's do
    assert container["env"] == [{"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/officeflow-prometheus"}]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["spec"]["volumes"]
    # where it listens and how many workers: settings from the env ConfigMap, which the dispatcher mode is in too
    env = find(docs, "ConfigMap", "officeflow-env")["data"]
    assert (env["OFFICEFLOW_GATEWAY_HOST"], env["OFFICEFLOW_GATEWAY_PORT"], env["OFFICEFLOW_GATEWAY_WORKERS"]) == (
        "0.0.0.0", "8090", "2")  # noqa: S104 (the probes and the Service reach the pod's IP)
    assert container["ports"] == [{"name": "http", "containerPort": 8090}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/officeflow/health/live", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/officeflow/health/live", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/officeflow/health/ready", "port": "http"}
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys() and container["resources"]["limits"]
    # runs are created by the dispatcher Deployment: the edge only stores deliveries
    assert env["OFFICEFLOW_DISPATCHER_MODE"] == "external"
    find(docs, "Deployment", "officeflow-dispatcher")
    # the HPA owns the replica count: the Deployment names none, so an upgrade does not reset it
    assert "replicas" not in deployment["spec"]
    hpa = find(docs, "HorizontalPodAutoscaler", "officeflow-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 70}}}]
    assert find(docs, "PodDisruptionBudget", "officeflow-gateway")["spec"]["maxUnavailable"] == 1
    service = find(docs, "Service", "officeflow-gateway")["spec"]
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["selector"]["app.kubernetes.io/component"] == "gateway"
    assert service["ports"] == [{"name": "http", "port": 8090, "targetPort": "http"}]
    # the Ingress: HR systems' deliveries to the edge (longest prefix wins), everything else to the api-server
    paths = find(docs, "Ingress", "officeflow")["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["pathType"], p["backend"]["service"]) for p in paths] == [
        ("/officeflow/webhooks", "Prefix", {"name": "officeflow-gateway", "port": {"name": "http"}}),
        ("/", "Prefix", {"name": "officeflow-api-server", "port": {"name": "http"}})]
    # NetworkPolicies: its port is open (default deny otherwise); Prometheus scrapes it like the api-server
    policy = find(docs, "NetworkPolicy", "officeflow-gateway")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    assert policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8090}]}]
    result = kubeconform(helm_template(*GATEWAY).stdout, kube_schemas)
    assert re.search(r"Invalid: 0, Errors: 0, Skipped: 0", result.stdout), result.stdout
    for environment in ENVIRONMENTS:
        run(tool("helm"), "lint", "--strict", CHART, "-f", values_file(environment), "--set", "gateway.enabled=true")


def test_the_edge_gateway_follows_its_values():
    docs = render("--set", "gateway.enabled=true,gateway.port=9000,gateway.workers=4,gateway.service.type=LoadBalancer",
                  "--set", "gateway.hpa.minReplicas=1,gateway.hpa.maxReplicas=3",
                  "--set", "gateway.hpa.targetCPUUtilizationPercentage=50",
                  "--set-string", "gateway.forwardedAllowIps=10.0.0.0/8",
                  "--set-string", "gateway.podAnnotations.prometheus\\.io/scrape=true",
                  "--set", "networkPolicy.gatewayFrom[0].namespaceSelector.matchLabels.name=ingress-nginx")
    pod = find(docs, "Deployment", "officeflow-gateway")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 9000}]
    assert {"name": "FORWARDED_ALLOW_IPS", "value": "10.0.0.0/8"} in container["env"]  # uvicorn's proxy trust
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    env = find(docs, "ConfigMap", "officeflow-env")["data"]
    assert (env["OFFICEFLOW_GATEWAY_PORT"], env["OFFICEFLOW_GATEWAY_WORKERS"]) == ("9000", "4")
    service = find(docs, "Service", "officeflow-gateway")["spec"]
    assert service["type"] == "LoadBalancer" and service["ports"][0]["port"] == 9000
    hpa = find(docs, "HorizontalPodAutoscaler", "officeflow-gateway")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 3)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "officeflow-gateway"]
    policy = find(docs, "NetworkPolicy", "officeflow-gateway")["spec"]["ingress"][0]
    assert policy == {"ports": [{"protocol": "TCP", "port": 9000}],
                      "from": [{"namespaceSelector": {"matchLabels": {"name": "ingress-nginx"}}}]}
    assert not [d for d in docs if d["kind"] == "Ingress"]  # no Ingress, no route: reach the Service yourself


@pytest.mark.parametrize(("args", "message"), [
    # the edge only stores deliveries: without the dispatcher Deployment nothing would create their runs
    (["--set", "gateway.enabled=true,dispatcher.enabled=false"], "gateway.enabled needs dispatcher.enabled=true"),
    (["--set", "gateway.enabled=true,gateway.hpa.minReplicas=5,gateway.hpa.maxReplicas=3"],
     "gateway.hpa.minReplicas (5) is above gateway.hpa.maxReplicas (3)"),
    (["--set", "gateway.workers=0"], "/gateway/workers"),
    (["--set", "gateway.port=70000"], "/gateway/port"),
    (["--set", "gateway.hpa.maxReplicas=0"], "/gateway/hpa/maxReplicas"),
    (["--set", "gateway.replicas=3"], "replicas"),  # the HPA's to decide
    (["--set-string", "gateway.forwardedAllowIps=any proxy"], "/gateway/forwardedAllowIps"),
])
def test_the_chart_refuses_an_inconsistent_gateway(args, message):
    result = helm_template(*args, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr
