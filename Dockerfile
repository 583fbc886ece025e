# syntax=docker/dockerfile:1
# OfficeFlow image: Apache Airflow 3.3 with OfficeFlow's DAGs, operators, plugin and core. One image serves
# every component: the api-server (default CMD), `scheduler`, `dag-processor`, `triggerer`, the dispatcher
# (entrypoint `tini -- python -m plugins.officeflow_gateway.dispatcher`) and the KubernetesExecutor's worker
# pods, whose args are `python -m airflow.sdk.execution_time.execute_workload --json-string ...` (their pod
# template sets `command: ["tini", "--"]`, as for the dispatcher) or `airflow tasks run ...` on this ENTRYPOINT.
#
# Why a slim multi-stage build and not FROM apache/airflow:3.3.2-python3.11: the image then holds exactly the
# pinned, tested dependency set of requirements.txt (the one ./run.sh and the tests install), nothing else;
# it is smaller (no build tools, no extras and providers OfficeFlow does not use); and there is no second pip
# layer resolved over the official image's own constraints, which would give a set nobody tested.
#
# Build:  docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t officeflow:0.1.0 .
#         (scripts/docker-build-push.sh does this; ./run.sh build).

# --- builder: a virtualenv with the runtime dependencies only (requirements.txt) ---------------------------
FROM python:3.11-slim-bookworm AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir uv==0.13.9

COPY requirements.txt /tmp/requirements.txt
# `pip sync`: exactly the compiled, pinned set (no test, lint or sandbox tools: those are in requirements-dev.txt).
RUN uv venv --python /usr/local/bin/python3.11 /opt/venv \
    && uv pip sync --python /opt/venv/bin/python --no-cache /tmp/requirements.txt

# --- runtime -------------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown

LABEL org.opencontainers.image.title="officeflow" \
      org.opencontainers.image.description="OfficeFlow: office and HR workflows on Apache Airflow 3.3 (DAGs, operators, webhook gateway plugin)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/officeflow \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/officeflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/officeflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    OFFICEFLOW_ENV=production \
    OFFICEFLOW_HOME=/opt/airflow/officeflow

# tini: PID 1 that forwards signals and reaps children; DejaVu fonts: PDF documents with Unicode text.
# The user is UID 50000 with GID 0, as in the official Airflow image (OpenShift-style arbitrary UIDs work:
# what it writes is group-0 writable).
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 50000 --gid 0 --no-create-home --home-dir /opt/airflow --shell /usr/sbin/nologin airflow \
    && mkdir -p /opt/airflow/logs /opt/airflow/officeflow \
    && chown -R 50000:0 /opt/airflow \
    && chmod -R g=u /opt/airflow

COPY --from=builder /opt/venv /opt/venv

# The product only (.dockerignore keeps everything else out of the context): read-only for the runtime user.
# Sign-in needs two of these files where the deployments point: config/webserver_config.py ([fab] config_file
# = /opt/officeflow/config/webserver_config.py; FAB skips a missing file silently) and the login page's
# template, plugins/officeflow_auth/templates/.
WORKDIR /opt/officeflow
COPY dags/ dags/
COPY operators/ operators/
COPY plugins/ plugins/
COPY include/ include/
COPY config/ config/

USER 50000:0
EXPOSE 8080

# The api-server's liveness (Kubernetes uses the chart's probes; compose sets one per service).
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/officeflow/health/live', timeout=8)"]

ENTRYPOINT ["tini", "--", "airflow"]
CMD ["api-server", "--port", "8080"]
