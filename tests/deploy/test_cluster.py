"""The chart installed and upgraded for real on a Kubernetes API server (kube-apiserver, etcd, scheduler and
controller-manager built from their Go modules; kwok's fake nodes), and the KubernetesExecutor of a real
Airflow scheduler running a DAG's tasks as worker pods.

Real: every object goes through the API server's validation, admission and RBAC; Helm's pre-install and
pre-upgrade hook Job is created, run to completion (kwok completes Job pods) and deleted; Deployments roll
out through ReplicaSets and the scheduler binds their pods to nodes; the edge gateway's HorizontalPodAutoscaler
(the controller-manager's) scales its Deployment and the endpoints controller puts its pods behind its Service;
the Airflow scheduler (outside the cluster, with the chart's airflow.cfg and pod template, as the chart's scheduler
ServiceAccount) creates,
watches and deletes worker pods; each worker runs the task through the Execution API.
The migration Job's command (Airflow's and the store's migrations, the OfficeFlow roles and the first admin
from the Secret) is run the same way on an empty database, and the admin signs in with the Secret's password.
Not real: no image is pulled and no container runs. Deployment pods are only marked Running by kwok (and Job
pods Completed); the worker pods' and the migration Job's command is run by the test's node agent
(tests/harness/kube.py) as a local process."""

from __future__ import annotations

import configparser
import json
import uuid
from collections.abc import Iterator

import pytest
import yaml

from include.officeflow.auth.passwords import check_password
from tests.harness.airflow_platform import AirflowPlatform
from tests.harness.chart import CHART, find, values_file
from tests.harness.e2e_support import wait_for_dag
from tests.harness.kube import IMAGE_PATHS, KubeCluster, NodeAgent, image_env
from tests.harness.waiting import wait_until

NAMESPACE = "officeflow-chart"
RELEASE = "officeflow"
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "dispatcher", "gateway")
SECRET = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://officeflow:pw@postgres.example:5432/airflow",
    "OFFICEFLOW_DB_URL": "postgresql+psycopg2://officeflow:pw@postgres.example:5432/officeflow",
    "AIRFLOW__CORE__FERNET_KEY": "Z3YbTGZ2Tq2zJ8pVJ3s0C9xkq6mUu2o2XqFz1pF1b3c=",
    "AIRFLOW__API_AUTH__JWT_SECRET": "cluster-test-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
    "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY": "cluster-test-webhook-key",
    # the first admin's (the migration Job's bootstrap makes user admin with it)
    "OFFICEFLOW_ADMIN_PASSWORD": "Cluster-Test-Root-Pw-4",
}


def deployments(kube: KubeCluster, release: str = RELEASE) -> dict[str, dict]:
    items = kube.json("get", "deployments", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={release}")["items"]
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in items}


@pytest.fixture(scope="module")
def installed(kube: KubeCluster) -> KubeCluster:
    kube.kubectl("create", "namespace", NAMESPACE)
    kube.create_secret(NAMESPACE, "officeflow-secrets", SECRET)
    result = kube.helm("install", RELEASE, CHART, "--namespace", NAMESPACE, "-f", values_file("dev"),
                       "--set", "image.tag=1.0.0", "--set", "gateway.enabled=true", "--wait", "--timeout", "180s")
    # NOTES.txt: where the UI and the webhooks are (dev values: an Ingress without TLS)
    assert "Airflow UI:      http://officeflow.dev.example.com/" in result.stdout
    assert "Webhook URL:     http://officeflow.dev.example.com/officeflow/webhooks/<endpoint id>" in result.stdout
    assert "Edge gateway:    Deployment officeflow-gateway (2 to 10 pods" in result.stdout
    assert "user admin, with the password under the key OFFICEFLOW_ADMIN_PASSWORD" in result.stdout
    # The edge gateway's Deployment names no replicas: its HPA raises it to minReplicas (2), without any metric.
    wait_until(lambda: deployments(kube)["gateway"]["status"].get("availableReplicas") == 2, timeout=120,
               interval=1, what="the HPA to scale the edge gateway to its 2 minimum replicas",
               detail=lambda: kube.kubectl("describe", "hpa", "officeflow-gateway", "-n", NAMESPACE).stdout)
    return kube


def test_install_creates_every_object_and_runs_the_migration_hook(installed: KubeCluster):
    kube = installed
    status = json.loads(kube.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed" and status["version"] == 1
    found = deployments(kube)
    assert set(found) == set(COMPONENTS)
    for component, deployment in found.items():
        assert deployment["status"].get("availableReplicas") == deployment["spec"]["replicas"], component
    pods = kube.json("get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}")["items"]
    workload_pods = [p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/component"] in COMPONENTS]
    assert len(workload_pods) == 7  # one of each (dev values), two edge gateways
    assert all(p["spec"]["nodeName"] and p["status"]["phase"] == "Running" for p in workload_pods)
    assert {c["image"] for p in workload_pods for c in p["spec"]["containers"]} == {"officeflow:1.0.0"}
    # The pre-install hook Job ran to completion before the Deployments, then was deleted (hook-succeeded).
    events = kube.json("get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.kind=Job")["items"]
    assert any(e["involvedObject"]["name"] == "officeflow-migrate" and e["reason"] == "Completed" for e in events)
    assert kube.kubectl("get", "job", "officeflow-migrate", "-n", NAMESPACE, check=False).returncode != 0
    for name in ("officeflow-env", "officeflow-airflow-config", "officeflow-pod-template"):
        kube.kubectl("get", "configmap", name, "-n", NAMESPACE)
    assert len(kube.json("get", "networkpolicies", "-n", NAMESPACE)["items"]) == 4  # default deny, api-server,
    # gateway, egress


def test_the_edge_gateway_is_scaled_by_its_hpa_and_serves_the_webhook_path(installed: KubeCluster):
    kube = installed
    hpa = kube.json("get", "hpa", "officeflow-gateway", "-n", NAMESPACE)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "officeflow-gateway"}
    gateway = deployments(kube)["gateway"]
    assert gateway["spec"]["replicas"] == hpa["spec"]["minReplicas"] == 2
    events = kube.json("get", "events", "-n", NAMESPACE, "--field-selector",
                       "involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name=officeflow-gateway")["items"]
    assert any(e["reason"] == "SuccessfulRescale" for e in events), events
    # the endpoints controller: the Service's ready endpoints are the two gateway pods (their port `http`)
    slices = kube.json("get", "endpointslices", "-n", NAMESPACE, "-l", "kubernetes.io/service-name=officeflow-gateway")
    ready = {e["targetRef"]["name"] for s in slices["items"] for e in s.get("endpoints") or []
             if e.get("conditions", {}).get("ready")}
    assert len(ready) == 2 and all(name.startswith("officeflow-gateway-") for name in ready), ready
    assert {p["port"] for s in slices["items"] for p in s["ports"]} == {8090}
    # the Ingress the API server accepted: deliveries to the gateway, the rest to the api-server
    paths = kube.json("get", "ingress", "officeflow", "-n", NAMESPACE)["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/officeflow/webhooks", "officeflow-gateway"), ("/", "officeflow-api-server")]


def test_rbac_lets_the_scheduler_manage_pods_and_nothing_more(installed: KubeCluster):
    def can(account: str, verb: str, resource: str) -> bool:
        resource, _, sub = resource.partition("/")  # kubectl reads pods/x as the pod named x
        result = installed.kubectl("auth", "can-i", verb, resource, *([f"--subresource={sub}"] if sub else []),
                                   "-n", NAMESPACE, f"--as=system:serviceaccount:{NAMESPACE}:officeflow-{account}",
                                   check=False)
        return result.stdout.strip() == "yes"

    for verb in ("create", "get", "list", "watch", "patch", "delete"):
        assert can("scheduler", verb, "pods"), verb
    assert can("scheduler", "get", "pods/log")
    assert not can("scheduler", "get", "secrets")
    assert not can("scheduler", "create", "deployments")
    assert not can("scheduler", "create", "pods/exec")
    assert installed.kubectl("auth", "can-i", "list", "pods", "-n", "default",
                             f"--as=system:serviceaccount:{NAMESPACE}:officeflow-scheduler",
                             check=False).stdout.strip() == "no"  # only in its own namespace
    for account in ("api-server", "component", "worker"):
        assert not can(account, "create", "pods"), account
        assert not can(account, "list", "pods"), account


def test_upgrade_rolls_the_deployments_to_the_new_image(installed: KubeCluster):
    kube = installed
    kube.helm("upgrade", RELEASE, CHART, "--namespace", NAMESPACE, "-f", values_file("dev"),
              "--set", "image.tag=1.0.1", "--set", "apiServer.replicas=2", "--set", "gateway.enabled=true",
              "--wait", "--timeout", "180s")
    status = json.loads(kube.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed" and status["version"] == 2
    found = deployments(kube)
    assert found["api-server"]["status"]["availableReplicas"] == 2
    assert found["gateway"]["spec"]["replicas"] == 2  # the HPA's count: the upgrade did not reset it
    for component, deployment in found.items():
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "officeflow:1.0.1", component
        assert deployment["status"]["updatedReplicas"] == deployment["spec"]["replicas"], component

    def only_new_pods():
        pods = kube.json("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=api-server")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and all(p["spec"]["containers"][0]["image"] == "officeflow:1.0.1" for p in live)
    wait_until(only_new_pods, timeout=90, what="the old api-server pods to go", interval=0.5)
    events = kube.json("get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.kind=Job")["items"]
    assert sum(e["involvedObject"]["name"] == "officeflow-migrate" and e["reason"] == "Completed"
               for e in events) == 2  # the pre-upgrade hook ran again
    history = json.loads(kube.helm("history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert [h["status"] for h in history] == ["superseded", "deployed"]


def test_the_api_server_refuses_what_the_schema_and_the_cluster_refuse(installed: KubeCluster):
    bad = installed.helm("upgrade", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "apiServer.replicas=-2",
                         check=False)
    assert bad.returncode != 0 and "/apiServer/replicas" in bad.stderr
    history = json.loads(installed.helm("history", RELEASE, "-n", NAMESPACE, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed"  # nothing changed


# --- the KubernetesExecutor ---------------------------------------------------------------------

def chart_airflow_config(kube: KubeCluster, namespace: str, release: str) -> configparser.ConfigParser:
    data = kube.json("get", "configmap", f"{release}-airflow-config", "-n", namespace)["data"]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(data["airflow.cfg"])
    return cfg


def migration_job(kube: KubeCluster, namespace: str, release: str) -> dict:
    """The release's migration hook Job, as installed (``helm get hooks``)."""
    hooks = [doc for doc in yaml.safe_load_all(kube.helm("get", "hooks", release, "-n", namespace).stdout) if doc]
    return find(hooks, "Job", f"{release}-migrate")


@pytest.fixture(scope="module")
def executor_platform(kube: KubeCluster, postgres, store, sandbox_server,
                      tmp_path_factory) -> Iterator[tuple[AirflowPlatform, NodeAgent, str]]:
    """Airflow's api-server, dag-processor and a scheduler running the KubernetesExecutor against the
    cluster, configured from a chart release installed there (its Secret holds this platform's secrets).
    Airflow's database starts empty: the release's migration Job, run by the node agent, makes it."""
    namespace, release = "officeflow-exec", "officeflow"
    home = tmp_path_factory.mktemp("executor")
    airflow_url = postgres.create_database("airflow_k8s_executor")
    secret = {**SECRET, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_url, "OFFICEFLOW_DB_URL": store,
              **sandbox_server.env()}
    platform = AirflowPlatform({**secret, "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor"}, smtp_port=1)
    # the Execution API the worker pods call: this test's api-server (it runs outside the cluster)
    kube.kubectl("create", "namespace", namespace)
    kube.create_secret(namespace, "officeflow-secrets", secret)
    kube.helm("install", release, CHART, "--namespace", namespace, "-f", values_file("dev"),
              "--set", f"airflow.executionApiUrl={platform.base_url}/execution/", "--wait", "--timeout", "180s")
    agent = NodeAgent(kube, namespace)

    # The migration Job's command, with its environment (the Secret, the auth manager), on the empty database:
    # Airflow's and FAB's tables, the store, the OfficeFlow roles and the admin from OFFICEFLOW_ADMIN_PASSWORD.
    job = migration_job(kube, namespace, release)["spec"]["template"]
    code, log = agent.execute({"metadata": {"name": "migrate"}, "spec": job["spec"]})
    assert code == 0 and "admin 'admin' created" in log, log[-3000:]
    assert "role 'HR Manager'" in log
    # At the next upgrade the admin exists: the bootstrap leaves it alone and no longer needs the password
    # (docs/deployment.md: it may leave the Secret).
    [container] = job["spec"]["containers"]
    again = {**container, "args": ["python -m plugins.officeflow_auth.roles bootstrap"],
             "env": [*container["env"], {"name": "OFFICEFLOW_ADMIN_PASSWORD", "value": ""}]}
    code, log = agent.execute({"metadata": {"name": "bootstrap-again"}, "spec": {**job["spec"], "containers": [again]}})
    assert code == 0 and "admin 'admin' exists" in log, log[-3000:]

    cfg = chart_airflow_config(kube, namespace, release)
    template = home / "pod_template.yaml"
    template.write_text(kube.json("get", "configmap", f"{release}-pod-template", "-n", namespace)
                        ["data"]["pod_template.yaml"])
    scheduler_kubeconfig = kube.service_account_kubeconfig(namespace, f"{release}-scheduler", home / "kubeconfig")
    executor_env = {f"AIRFLOW__KUBERNETES_EXECUTOR__{k.upper()}": v for k, v in cfg["kubernetes_executor"].items()}
    executor_env.update({
        "AIRFLOW__CORE__EXECUTOR": cfg["core"]["executor"],
        # outside the cluster: the pod template and the ServiceAccount's token from files, not the pod's mounts
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(template),
        "AIRFLOW__KUBERNETES_EXECUTOR__IN_CLUSTER": "False",
        "AIRFLOW__KUBERNETES_EXECUTOR__CONFIG_FILE": str(scheduler_kubeconfig),
        # sign-in as the chart configures it: its auth manager and FAB settings file (in the image: this checkout)
        "AIRFLOW__CORE__AUTH_MANAGER": cfg["core"]["auth_manager"],
        "AIRFLOW__FAB__CONFIG_FILE": cfg["fab"]["config_file"].replace("/opt/officeflow",
                                                                        IMAGE_PATHS["/opt/officeflow"]),
    })
    platform.env.update(executor_env)
    platform.password = SECRET["OFFICEFLOW_ADMIN_PASSWORD"]  # the platform signs in as admin with it
    agent.start()
    try:
        yield platform.start(components=("api-server", "scheduler", "dag-processor")), agent, namespace
    finally:
        platform.stop()
        agent.stop()


def test_the_migration_job_made_the_first_admin_who_signs_in(executor_platform, kube):
    """The Job's bootstrap (run by the fixture) made user admin (role Admin) from the Secret, who signs in (the
    platform's token: POST /auth/token with the Secret's password), and the OfficeFlow roles; run again without
    the password, it left the admin alone (the fixture)."""
    platform, _, namespace = executor_platform
    check_password(SECRET["OFFICEFLOW_ADMIN_PASSWORD"], username="admin", min_length=12)
    me = platform.api("GET", "/auth/fab/v1/users/admin")
    assert me.status_code == 200, me.text
    assert [role["name"] for role in me.json()["roles"]] == ["Admin"]
    roles = platform.api("GET", "/auth/fab/v1/roles", params={"limit": 100}).json()["roles"]
    assert {"OfficeFlow Admin", "HR Manager", "IT Operator", "Auditor"} <= {role["name"] for role in roles}
    job = migration_job(kube, namespace, "officeflow")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"][0].endswith("&& python -m plugins.officeflow_auth.roles bootstrap")


def test_the_kubernetes_executor_runs_a_dag_run_in_worker_pods(executor_platform, sandbox_server, kube):
    platform, agent, namespace = executor_platform
    assert platform.env["AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE"] == namespace
    sandbox_server.reset()
    wait_for_dag(platform, "identity_provisioning")
    login = f"ada.lovelace.{uuid.uuid4().hex[:6]}@officeflow.test"
    run_id = f"k8s-{uuid.uuid4().hex[:10]}"
    response = platform.api("POST", "/api/v2/dags/identity_provisioning/dagRuns", json={
        "dag_run_id": run_id, "logical_date": None,
        "conf": {"first_name": "Ada", "last_name": "Lovelace", "email": login, "department": "Engineering",
                 "job_title": "Software Engineer"}})
    assert response.status_code == 200, response.text
    run = platform.wait_for_run("identity_provisioning", run_id, timeout=300)
    assert run["state"] == "success", (platform.task_states("identity_provisioning", run_id), agent.ran,
                                        platform.logs_tail())

    # Every task ran in its own worker pod, created by the executor from the chart's template ...
    tis = platform.api("GET", f"/api/v2/dags/identity_provisioning/dagRuns/{run_id}/taskInstances").json()
    assert len(tis["task_instances"]) == 5  # person, providers, provision x 3
    # (a worker reports its task's state before its process exits: wait for the agent to see all five end)
    ran = wait_until(lambda: len(agent.ran_for(run_id)) == 5 and agent.ran_for(run_id), timeout=60,
                     what="five worker pods of the run to end", interval=0.5, detail=lambda: f"pods: {agent.ran}")
    assert set(ran.values()) == {0}, ran
    # ... and did its work: the account exists in each provider (the sandbox), once.
    for service in ("google", "microsoft", "okta"):
        assert login in str(sandbox_server.state(service)).lower(), service

    # The executor reconciled the pods' end: finished worker pods are deleted (delete_worker_pods) or,
    # in dev values (delete_worker_pods=False), labelled done.
    def reconciled():
        pods = kube.json("get", "pods", "-n", namespace, "-l", "kubernetes_executor=True")["items"]
        mine = [p for p in pods if p["metadata"]["annotations"].get("run_id") == run_id]
        return all(p["metadata"]["labels"].get("airflow_executor_done") == "True" for p in mine) and mine
    pods = wait_until(reconciled, timeout=60, what="the executor to mark its pods done", interval=0.5)
    assert {p["status"]["phase"] for p in pods} == {"Succeeded"}
    template = pods[0]["spec"]
    assert template["serviceAccountName"] == "officeflow-worker"
    assert template["containers"][0]["name"] == "base"
    assert template["containers"][0]["command"] == ["tini", "--"]
    assert template["containers"][0]["args"][:3] == ["python", "-m", "airflow.sdk.execution_time.execute_workload"]
    assert {p["metadata"]["annotations"]["task_id"] for p in pods} == {"person", "providers", "provision"}


def test_the_agent_runs_pods_with_the_image_env():
    """The node agent takes the image's ENV from the Dockerfile and maps its paths onto this checkout."""
    env = image_env()
    assert env["AIRFLOW_HOME"] == "/opt/airflow" and env["PYTHONPATH"] == "/opt/officeflow"
    assert env["PATH"].startswith("/opt/venv/bin:/usr/local/sbin")
