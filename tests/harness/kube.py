"""A real Kubernetes control plane for the deployment tests, and a node agent that runs worker pods.

``KubeCluster`` is kwokctl's ``binary`` runtime with locally built binaries (scripts/install-tools.sh): a
real etcd, kube-apiserver, kube-controller-manager and kube-scheduler, and kwok's controller faking the
nodes (pods are scheduled and bound for real; kwok marks them Running, and Job pods Completed). RBAC,
admission, validation, Deployments, ReplicaSets, Jobs and Helm's hooks all run for real.

``NodeAgent`` stands in for a kubelet for the KubernetesExecutor's worker pods (label
``kubernetes_executor=True``): it runs the pod's command as a local process with the environment the pod
spec gives it (``env``, ``envFrom`` ConfigMaps and Secrets read from the cluster), its ConfigMap volumes
written under a per-pod root, and the image's filesystem taken as this checkout (the Dockerfile copies
the repository to /opt/officeflow and sets AIRFLOW_HOME=/opt/airflow). It then patches the pod's status
with the exit code, as a kubelet does. ``NodeAgent.execute`` runs any pod spec that way, e.g. the chart's
migration Job, whose pods kwok completes without running them. What is not real: no image is pulled and
no container isolates the process.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.harness.tools import ROOT, run, tool

# The image's filesystem on this machine: the Dockerfile COPYs the checkout to /opt/officeflow and builds the
# runtime venv (requirements.txt, as .venv holds it) in /opt/venv.
IMAGE_PATHS = {"/opt/officeflow": str(ROOT), "/opt/venv": sys.prefix}


def image_env(dockerfile: Path = ROOT / "Dockerfile") -> dict[str, str]:
    """The ENV of the Dockerfile's last stage (``KEY=value`` pairs, line continuations joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stage = re.split(r"(?m)^FROM\s", text)[-1]
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}  # the python base image's
    for line in re.findall(r"(?m)^ENV\s+(.+)$", stage):
        for key, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", line):
            env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
    return env


class KubeCluster:
    """A kwok cluster on 127.0.0.1 with one fake node; ``kubectl``/``helm`` run against it."""

    def __init__(self, name: str = "officeflow-test") -> None:
        self.name = name
        self.workdir = Path(tempfile.mkdtemp(prefix="officeflow-kwok-"))
        self.kubeconfig = self.workdir / "clusters" / name / "kubeconfig.yaml"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KWOK_WORKDIR": str(self.workdir), "KUBECONFIG": str(self.kubeconfig)}

    def start(self) -> KubeCluster:
        try:
            return self._start()
        except BaseException:
            self.stop()  # a half-started cluster's processes must not outlive the session
            raise

    def _start(self) -> KubeCluster:
        config = self.workdir / "kwok.yaml"  # every binary local: kwokctl downloads nothing
        config.write_text(yaml.safe_dump({"apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                                          "kind": "KwokctlConfiguration",
                                          "options": {"kubectlBinary": str(tool("kubectl"))}}))
        run(tool("kwokctl"), "--config", config, "create", "cluster", "--name", self.name, "--runtime", "binary",
            "--kube-apiserver-binary", tool("kube-apiserver"),
            "--kube-controller-manager-binary", tool("kube-controller-manager"),
            "--kube-scheduler-binary", tool("kube-scheduler"),
            "--kwok-controller-binary", tool("kwok"), "--etcd-binary", tool("etcd"),
            "--kubeconfig", self.workdir / "user-kubeconfig.yaml", "--wait", "60s", env=self._env(), timeout=180)
        run(tool("kwokctl"), "scale", "node", "--name", self.name, "--replicas", "2", env=self._env(), timeout=60)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0:
                return self
            time.sleep(0.5)
        log = self.workdir / "clusters" / self.name / "logs" / "kube-controller-manager.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"the cluster's controllers did not create the default ServiceAccount in 120 s\n{tail}")

    def stop(self) -> None:
        run(tool("kwokctl"), "delete", "cluster", "--name", self.name, env=self._env(), check=False, timeout=120)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kubectl(self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120):
        return run(tool("kubectl"), "--kubeconfig", self.kubeconfig, *args, check=check, input=input,
                   timeout=timeout)

    def helm(self, *args: str | Path, check: bool = True, timeout: float = 300):
        return run(tool("helm"), "--kubeconfig", self.kubeconfig, *args, check=check, timeout=timeout,
                   env=self._env())

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def server(self) -> tuple[str, str]:
        """The API server's URL and its CA (base64) from the admin kubeconfig."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        ca = cluster.get("certificate-authority-data")
        if ca is None:
            ca = base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
        return cluster["server"], ca

    def service_account_kubeconfig(self, namespace: str, account: str, path: Path) -> Path:
        """A kubeconfig that acts as a ServiceAccount (a TokenRequest token): what a pod of it would get."""
        token = self.kubectl("create", "token", account, "-n", namespace, "--duration", "2h").stdout.strip()
        server, ca = self.server()
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "sa",
            "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority-data": ca}}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "c", "user": account, "namespace": namespace}}],
        }))
        return path

    def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                    "type": "Opaque", "stringData": data}
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))


class NodeAgent:
    """Runs the KubernetesExecutor's worker pods of one namespace as local processes (see the module doc)."""

    def __init__(self, cluster: KubeCluster, namespace: str, python: str = sys.executable) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.python = python
        self.root = Path(tempfile.mkdtemp(prefix="officeflow-node-agent-"))
        self.ran: dict[str, int] = {}  # pod name -> exit code
        self.run_ids: dict[str, str] = {}  # pod name -> the DAG run its task belongs to (the executor's annotation)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="node-agent", daemon=True)
        self._started: set[str] = set()

    def start(self) -> NodeAgent:
        self._thread.start()
        return self

    def ran_for(self, run_id: str) -> dict[str, int]:
        """Exit codes of the pods that ran tasks of DAG run ``run_id`` (scheduled DAGs run pods of their own)."""
        return {name: code for name, code in list(self.ran.items()) if self.run_ids.get(name) == run_id}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            pods = self.cluster.json("get", "pods", "-n", self.namespace, "-l", "kubernetes_executor=True")["items"]
            for pod in pods:
                name = pod["metadata"]["name"]
                # kwok has made the bound pod Running (its only move for a bare pod): now run it
                if (name not in self._started and pod["spec"].get("nodeName")
                        and pod.get("status", {}).get("phase") == "Running"
                        and not pod["metadata"].get("deletionTimestamp")):
                    self._started.add(name)
                    threading.Thread(target=self._run_pod, args=(pod,), daemon=True).start()
            self._stop.wait(0.5)

    def _run_pod(self, pod: dict) -> None:
        name = pod["metadata"]["name"]
        container = pod["spec"]["containers"][0]
        started = _now()
        self._patch_status(name, {"phase": "Running", "containerStatuses": [_status(container, running=started)]})
        code, _ = self.execute(pod)
        self.run_ids[name] = str(pod["metadata"].get("annotations", {}).get("run_id", ""))
        self.ran[name] = code
        self._patch_status(name, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
            _status(container, terminated={"exitCode": code, "startedAt": started, "finishedAt": _now(),
                                           "reason": "Completed" if code == 0 else "Error"})]})

    def execute(self, pod: dict, timeout: float = 600) -> tuple[int, str]:
        """Run the pod's (first) container as a local process, as described in the module doc; returns its exit
        code and its output. ``pod`` needs ``metadata.name`` and ``spec`` only."""
        pod_root = self.root / pod["metadata"]["name"]
        home = pod_root / "opt" / "airflow"
        paths = {**IMAGE_PATHS, "/opt/airflow": str(home)}
        container = pod["spec"]["containers"][0]
        self._mount_volumes(pod, container, pod_root, paths)
        env = {"HOME": str(home), "LANG": "C.UTF-8"}
        env.update({k: _remap(v, paths) for k, v in image_env().items()})  # the image's ENV, then the pod's
        env.update(self._pod_env(container, paths))
        argv = [*container.get("command", []), *container.get("args", [])]
        if argv[:2] == ["tini", "--"]:
            argv = argv[2:]
        if argv and argv[0] == "python":  # the image's python: its venv's, first on the image's PATH
            argv[0] = shutil.which("python", path=env["PATH"]) or self.python
        home.mkdir(parents=True, exist_ok=True)
        log = pod_root / "container.log"
        with log.open("wb") as out:
            code = subprocess.run(argv, env=env, cwd=str(home), stdout=out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        return code, log.read_text(errors="replace")

    def _mount_volumes(self, pod: dict, container: dict, pod_root: Path, paths: dict[str, str]) -> None:
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            target = Path(_remap(mount["mountPath"], paths))
            volume = volumes[mount["name"]]
            if "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
            elif "configMap" in volume:
                data = self.cluster.json("get", "configmap", volume["configMap"]["name"], "-n", self.namespace)["data"]
                if mount.get("subPath"):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(_remap(data[mount["subPath"]], paths))
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    for key, value in data.items():
                        (target / key).write_text(_remap(value, paths))

    def _pod_env(self, container: dict, paths: dict[str, str]) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(self.cluster.json("get", "configmap", source["configMapRef"]["name"],
                                             "-n", self.namespace).get("data", {}))
            if "secretRef" in source:
                data = self.cluster.json("get", "secret", source["secretRef"]["name"], "-n", self.namespace)["data"]
                env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
        for item in container.get("env", []):
            env[item["name"]] = item.get("value", "")
        return {k: _remap(v, paths) for k, v in env.items() if k.replace("_", "").isalnum()}

    def _patch_status(self, name: str, status: dict) -> None:
        self.cluster.kubectl("patch", "pod", name, "-n", self.namespace, "--subresource", "status",
                             "--type", "merge", "-p", json.dumps({"status": status}), check=False)


def _remap(text: str, paths: dict[str, str]) -> str:
    for image_path, local in paths.items():
        text = text.replace(image_path, local)
    return text


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(container: dict, running: str | None = None, terminated: dict | None = None) -> dict:
    state = {"running": {"startedAt": running}} if running else {"terminated": terminated}
    return {"name": container["name"], "image": container["image"], "imageID": "", "ready": bool(running),
            "restartCount": 0, "started": bool(running), "state": state}
