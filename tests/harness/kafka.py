"""A real Apache Kafka broker for the tests: Kafka 4.x in KRaft mode, one node that is broker and controller.

The jars come from Maven Central (``scripts/kafka/pom.xml``), resolved once per machine by
``scripts/kafka/fetch.sh`` into ``~/.cache/officeflow/kafka/<version>/libs``; ``./run.sh test`` runs it and passes
the folder in ``OFFICEFLOW_KAFKA_LIBS``. :meth:`KafkaBroker.start` formats a temporary log dir (``StorageTool
format``) and starts ``kafka.Kafka`` on free 127.0.0.1 ports with a small heap; :meth:`stop_broker` /
:meth:`restart` take it down and bring it back on the same port with the same data ("broker down" tests);
:meth:`stop` also removes the data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.harness.environment import REPO_ROOT
from tests.harness.ports import free_port
from tests.harness.processes import stop_process

JVM_OPTIONS = ("-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
               "-Djava.awt.headless=true")


def kafka_libs() -> Path:
    """The folder of the broker's jars: ``OFFICEFLOW_KAFKA_LIBS``, else what ``scripts/kafka/fetch.sh`` resolves
    (run it if the cache is missing: Maven, ~20 s once)."""
    configured = os.environ.get("OFFICEFLOW_KAFKA_LIBS")
    if configured:
        libs = Path(configured)
    else:
        fetch = REPO_ROOT / "scripts" / "kafka" / "fetch.sh"
        subprocess.run([str(fetch)], check=True)
        libs = Path(subprocess.run([str(fetch), "--print-dir"], check=True, capture_output=True,
                                   text=True).stdout.strip())
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"no Kafka jars in {libs}: run scripts/kafka/fetch.sh (./run.sh test does)")
    return libs


def _java() -> str:
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found: the tests' Kafka broker needs Java 17+ "
                           "(apt-get install openjdk-17-jre-headless)")
    return found


class KafkaBroker:
    """One KRaft node on 127.0.0.1; clients use :attr:`bootstrap_servers`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.controller_port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="officeflow-kafka-"))
        self.data = self.root / "data"
        self.config = self.root / "server.properties"
        self.log = self.root / "kafka.log"
        self.libs = kafka_libs()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_config(self) -> dict[str, str]:
        """The librdkafka settings that reach this broker (what ``kafka_default``'s extra holds)."""
        return {"bootstrap.servers": self.bootstrap_servers}

    def _command(self, *args: str) -> list[str]:
        return [_java(), *JVM_OPTIONS, f"-Dkafka.logs.dir={self.root / 'logs'}", "-cp", f"{self.libs}/*", *args]

    def _write_config(self) -> None:
        self.config.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.data}",
            "num.partitions=1",
            "auto.create.topics.enable=false",  # the relay creates its topics, as it must in production
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=2",
            "",
        ]))

    def start(self, timeout: float = 60) -> KafkaBroker:
        """Format the log dir (KRaft) and start the broker; returns once it answers a metadata request."""
        self._write_config()
        with self.log.open("ab") as log:
            subprocess.run(self._command("kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                                         "-c", str(self.config)),
                           stdout=log, stderr=subprocess.STDOUT, check=True, timeout=timeout)
        return self._launch(timeout)

    def _launch(self, timeout: float) -> KafkaBroker:
        with self.log.open("ab") as log:  # a pipe nobody reads would fill up
            self._process = subprocess.Popen(self._command("kafka.Kafka", str(self.config)),
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.is_up():
                return self
            time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-3000:]
        self.stop_broker()
        raise RuntimeError(f"Kafka on port {self.port} did not start:\n{tail}")

    def is_up(self) -> bool:
        """Whether the broker answers a metadata request with itself as a broker."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({**self.client_config(), "socket.connection.setup.timeout.ms": 1000,
                             "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=1)
        except Exception:
            return False
        return bool(metadata.brokers)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop_broker(self) -> None:
        """Stop the process, keeping its data and port (see :meth:`restart`)."""
        stop_process(self._process, timeout=20)
        self._process = None

    def restart(self, timeout: float = 60) -> KafkaBroker:
        """Start a stopped broker again on the same port, with the topics and messages it had."""
        if self.running:
            raise RuntimeError("the broker is running: stop_broker() first")
        return self._launch(timeout)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self.client_config())  # kept referenced until the result: its end cancels it
        futures = admin.create_topics([NewTopic(name, partitions, 1)])
        futures[name].result(timeout=30)

    def consume(self, topic: str, expected: int, timeout: float = 30) -> list[Any]:
        """Read ``topic`` from its beginning until ``expected`` messages arrived or ``timeout`` passed, and a
        second more (to catch extras: a duplicate must show in the count); returns the messages."""
        from confluent_kafka import Consumer

        consumer = Consumer({**self.client_config(), "group.id": f"test-{uuid.uuid4().hex}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([topic])
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None:
                    if len(messages) >= expected:
                        deadline = min(deadline, time.monotonic() + 1.0)
                    continue
                if message.error():
                    continue
                messages.append(message)
        finally:
            consumer.close()
        return messages

    def stop(self) -> None:
        """Stop the broker and remove its data."""
        self.stop_broker()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what ``random-uuid`` prints). Like
    Kafka's ``Uuid.randomUuid``, never one that starts with ``-``: the storage tool would read it as an option
    (1 start in 64 failed that way)."""
    import base64

    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
