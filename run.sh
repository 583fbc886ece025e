#!/usr/bin/env bash
# OfficeFlow's one entry point. `./run.sh help` lists the commands.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"

usage() {
  cat <<'EOF'
Usage: ./run.sh <command>

  dev        Install if needed, migrate, and run OfficeFlow on http://localhost:8080
             (api-server, scheduler, dag-processor, triggerer, SMTP sink, SaaS sandbox, and the events relay
             when a Kafka connection is configured; Ctrl-C stops all)
  test       Install if needed and run the whole test suite (starts its own PostgreSQL, Redis, MinIO,
             Kafka, sandbox and Airflow); `test unit|integration|e2e|chaos|deploy` runs one tier,
             `test coverage` the suite with a coverage report; other arguments go to pytest
  seed       Add development data to the running dev platform: sample endpoints, a declarative
             workflow, three sample hires (onboarding runs)
  db-reset   Empty the dev databases (Airflow's and the OfficeFlow store); asks first (--yes skips)
  migration NAME  Autogenerate the next OfficeFlow store migration from the models
  migrate    Upgrade Airflow's metadata DB and the OfficeFlow store
  webhook    Send a sample signed BambooHR webhook to the running dev platform
  dispatcher Run the webhook dispatcher in the foreground (for OFFICEFLOW_DISPATCHER_MODE=external;
             `dev` starts it by itself in that mode)
  gateway    Run the standalone edge gateway in the foreground on the dev platform's store and settings:
             webhook deliveries, health and metrics under /officeflow on http://127.0.0.1:8090
             (OFFICEFLOW_GATEWAY_PORT); needs `dev` started once (it migrates the databases)
  relay      Run the events relay in the foreground: the outbox to Kafka (connection kafka_default,
             docs/events.md); `relay lag` prints the outbox lag as JSON, `relay configured` whether
             the Kafka connection exists (what `dev` checks)
  lint       ruff + mypy + the import contracts (import-linter: layers, sandbox, no cycles)
             + shellcheck on every script, hadolint on the Dockerfile
  build      Build the production image with the local Docker engine (scripts/docker-build-push.sh
             --local-only; options go to that script)
  tools      Build and cache the deployment check tools (helm, kubeconform, trivy, kwok, etcd, the
             Kubernetes control plane): ~20 min once per machine, then instant; `test` runs it
  chaos      The fault-injection suite: 10,000 deliveries while processes are killed, PostgreSQL restarts
             and run creation fails; checks nothing is lost or done twice (docs/RELIABILITY.md);
             `chaos short` the shorter profile that ./run.sh test runs
  bench      Measure webhook -> run success against a REST-API baseline (docs/BENCHMARKS.md)
  bench-gateway  Gateway throughput and latency under signed load (edge, api-server), against a minimal
                 reference server as ceiling, on a durable PostgreSQL
  bench-onboarding  Full employee_onboarding run time against a no-op DAG of the same shape
  bench-relay  Events relay throughput (outbox -> Kafka acknowledged) against producing directly
  clean      Remove local state (.officeflow/); `clean --all` also removes .venv
EOF
}

log() { printf '\033[1;34m[officeflow]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[officeflow] %s\033[0m\n' "$*" >&2; exit 1; }

# --- installation -------------------------------------------------------------------------
# The runtime (requirements.txt, what the image holds) and the dev, test and lint tools (requirements-dev.txt).
ensure_venv() {
  local stamp="$VENV/.requirements.sha256"
  local want; want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return
  fi
  if ! command -v uv >/dev/null 2>&1; then
    log "installing uv"
    python3 -m pip install --quiet uv || die "could not install uv (pip install uv)"
  fi
  [[ -x "$VENV/bin/python" ]] || uv venv --quiet --python 3.11 "$VENV"
  log "installing Python dependencies into .venv (uv, pinned requirements.txt + requirements-dev.txt)"
  uv pip install --quiet --python "$VENV/bin/python" -r requirements.txt -r requirements-dev.txt
  echo "$want" > "$stamp"
}

postgres_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }
  done
  return 1
}

APT_UPDATED=0
apt_install() {  # apt_install PACKAGE...: as root, once per run
  [[ "$(id -u)" == 0 ]] || die "missing system packages: apt-get install $* (as root)"
  if ((APT_UPDATED == 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The tests start their own throw-away PostgreSQL cluster and Redis server from these binaries.
ensure_services() {
  if ! postgres_bin >/dev/null; then
    log "installing PostgreSQL from apt"
    apt_install postgresql
    postgres_bin >/dev/null || die "PostgreSQL install did not provide initdb"
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing Redis from apt"
    apt_install redis-server
  fi
}

# The tests' S3 server is MinIO, built from its Go module (pinned) once and kept in ~/go/bin.
MINIO_MODULE="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
ensure_minio() {
  local bin="${OFFICEFLOW_MINIO_BIN:-$(command -v minio || echo "$HOME/go/bin/minio")}"
  if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null 2>&1 || die "Go is needed to build MinIO (the tests' S3 server)"
    log "building MinIO from its Go module (once; about 3 minutes)"
    GOFLAGS=-mod=mod go install "$MINIO_MODULE"
    bin="$(go env GOPATH)/bin/minio"
  fi
  export OFFICEFLOW_MINIO_BIN="$bin"
}

# The tests' Kafka broker: Apache Kafka's jars from Maven Central (scripts/kafka/pom.xml), resolved once into
# ~/.cache/officeflow/kafka/<version> by scripts/kafka/fetch.sh; run on Java 17 (tests/harness/kafka.py).
ensure_kafka() {
  if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    log "installing Java 17 and Maven from apt (the tests' Kafka broker)"
    apt_install openjdk-17-jre-headless maven
  fi
  scripts/kafka/fetch.sh
  OFFICEFLOW_KAFKA_LIBS="$(scripts/kafka/fetch.sh --print-dir)"
  export OFFICEFLOW_KAFKA_LIBS
}

# helm, kubeconform, trivy, kwok and a Kubernetes control plane for the deployment tests: Go builds,
# cached per machine under ~/.cache/officeflow/tools (scripts/install-tools.sh).
ensure_tools() {
  scripts/install-tools.sh
  OFFICEFLOW_TOOLS_BIN="$(scripts/install-tools.sh --print-dir)"
  export OFFICEFLOW_TOOLS_BIN PATH="$OFFICEFLOW_TOOLS_BIN:$PATH"
}

cmd_tools() { ensure_tools; }

cmd_build() { exec scripts/docker-build-push.sh --local-only "$@"; }

# Documents are rendered to PDF with DejaVu fonts (Unicode names); Debian's fonts-dejavu-core has them.
ensure_fonts() {
  if [[ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf && -z "${OFFICEFLOW_DOCUMENTS_FONT_DIR:-}" ]]; then
    log "installing DejaVu fonts from apt (PDF documents)"
    apt_install fonts-dejavu-core
  fi
}

# The browser tests of the Airflow UI drive Debian's chromium (Playwright brings no browser here).
ensure_chromium() {
  if [[ -z "${OFFICEFLOW_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
    log "installing chromium from apt (browser tests of the Airflow UI)"
    apt_install chromium
  fi
}

# --- environment --------------------------------------------------------------------------
# Layering: process environment > .env > defaults. `.env` only fills variables that are unset.
load_dotenv() {
  [[ -f "$ROOT/.env" ]] || return 0
  local line key value
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"; value="${BASH_REMATCH[3]}"
    value="${value%\"}"; value="${value#\"}"; value="${value%\'}"; value="${value#\'}"
    if [[ -z "${!key+x}" ]]; then export "$key=$value"; fi
  done < "$ROOT/.env"
}

generated_password() { "$VENV/bin/python" -c 'from include.officeflow.auth.passwords import generate_password; print(generate_password())'; }
random_secret() { "$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(48))'; }

# First `dev` run writes a .env with generated secrets, so restarts keep tokens and keys valid.
ensure_dotenv() {
  if [[ -f "$ROOT/.env" ]]; then  # one written before workflow_insights: add its API user's password
    grep -q '^OFFICEFLOW_INSIGHTS_API_PASSWORD=' "$ROOT/.env" \
      || echo "OFFICEFLOW_INSIGHTS_API_PASSWORD=$(generated_password)" >> "$ROOT/.env"
    return
  fi
  log "writing .env with generated dev secrets (edit it, or override with environment variables)"
  umask 077
  cat > "$ROOT/.env" <<EOF
# OfficeFlow local configuration (dev). Environment variables override these values.
OFFICEFLOW_ENV=dev
OFFICEFLOW_ADMIN_PASSWORD=$(generated_password)
OFFICEFLOW_INSIGHTS_API_PASSWORD=$(generated_password)
OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY=$(random_secret)
AIRFLOW__API_AUTH__JWT_SECRET=$(random_secret)
AIRFLOW__CORE__FERNET_KEY=$("$VENV/bin/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
EOF
  umask 022
}

airflow_env() {
  load_dotenv
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$VENV/bin:$PATH"
  export OFFICEFLOW_HOME="${OFFICEFLOW_HOME:-$ROOT/.officeflow}"
  export AIRFLOW_HOME="${AIRFLOW_HOME:-$OFFICEFLOW_HOME/airflow}"
  export OFFICEFLOW_PORT="${OFFICEFLOW_PORT:-8080}"
  export OFFICEFLOW_SMTP_PORT="${OFFICEFLOW_SMTP_PORT:-2525}"
  mkdir -p "$AIRFLOW_HOME" "$OFFICEFLOW_HOME/logs" "$OFFICEFLOW_HOME/mailbox" "$OFFICEFLOW_HOME/documents"
  export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
  export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
  if [[ "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" == sqlite* ]]; then  # many writers, one file: wait, don't fail
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS:-config.dev_sqlite.CONNECT_ARGS}"
  fi
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$OFFICEFLOW_PORT/execution/"
  export AIRFLOW__API__BASE_URL="http://localhost:$OFFICEFLOW_PORT"
  export AIRFLOW__API__PORT="$OFFICEFLOW_PORT"
  # The address the api-server binds to, in Airflow's own config too (its default is 0.0.0.0).
  export AIRFLOW__API__HOST="${OFFICEFLOW_HOST:-127.0.0.1}"
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
  # Users, roles and sign-in: Airflow's FAB auth manager, extended by OfficeFlow (MFA, password policy), with
  # the FAB settings of config/webserver_config.py. The first admin comes from OFFICEFLOW_ADMIN_PASSWORD.
  export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-plugins.officeflow_auth.manager.OfficeFlowFabAuthManager}"
  export AIRFLOW__FAB__CONFIG_FILE="${AIRFLOW__FAB__CONFIG_FILE:-$ROOT/config/webserver_config.py}"
  # The sandbox Slack's seeded admin has this e-mail: its approval clicks map to the admin user.
  export OFFICEFLOW_ADMIN_EMAIL="${OFFICEFLOW_ADMIN_EMAIL:-admin@officeflow.test}"
  if [[ -z "${AIRFLOW_CONN_SMTP_DEFAULT:-}" ]]; then
    AIRFLOW_CONN_SMTP_DEFAULT="$(printf '{"conn_type": "smtp", "host": "127.0.0.1", "port": %s, "extra": {"disable_tls": true, "disable_ssl": true, "from_email": "people@officeflow.local", "timeout": 10, "retry_limit": 1}}' "$OFFICEFLOW_SMTP_PORT")"
    export AIRFLOW_CONN_SMTP_DEFAULT
  fi
  # workflow_insights reads the run history through the REST API as the read-only user cmd_migrate makes.
  if [[ -z "${AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API:-}" && -n "${OFFICEFLOW_INSIGHTS_API_PASSWORD:-}" ]]; then
    AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API="$(printf '{"conn_type": "http", "host": "http://127.0.0.1:%s", "login": "officeflow-insights", "password": "%s"}' "$OFFICEFLOW_PORT" "$OFFICEFLOW_INSIGHTS_API_PASSWORD")"
    export AIRFLOW_CONN_OFFICEFLOW_AIRFLOW_API
  fi
}

# --- commands -----------------------------------------------------------------------------
# The rest of the environment every dev component shares (`dev`'s and `gateway`'s): the sandbox's connections
# (.officeflow/sandbox/connections.env, written by `dev`; a variable already set wins) and the HR workflows' defaults.
dev_component_env() {
  if [[ -f "$OFFICEFLOW_HOME/sandbox/connections.env" ]]; then
    # shellcheck disable=SC1091
    source "$OFFICEFLOW_HOME/sandbox/connections.env"
  fi
  # The sandbox's seeded Slack user approves HR requests that name no manager (set your own in .env).
  export OFFICEFLOW_PEOPLE_TEAM_EMAIL="${OFFICEFLOW_PEOPLE_TEAM_EMAIL:-people.manager@officeflow.test}"
  # A calendar organizer must be a user of the (sandbox's) Google domain: its seeded admin.
  export OFFICEFLOW_IT_TEAM_EMAIL="${OFFICEFLOW_IT_TEAM_EMAIL:-admin@officeflow.test}"
}

cmd_migrate() {
  ensure_venv
  airflow_env
  log "migrating Airflow metadata DB ($AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)"
  airflow db migrate >"$OFFICEFLOW_HOME/logs/migrate.log" 2>&1 || { tail -30 "$OFFICEFLOW_HOME/logs/migrate.log"; die "airflow db migrate failed"; }
  log "migrating the OfficeFlow store"
  python -m include.officeflow.store migrate
  log "syncing the OfficeFlow roles; the first admin if missing; the workflow_insights API user"
  python -m plugins.officeflow_auth.roles bootstrap >"$OFFICEFLOW_HOME/logs/roles.log" 2>&1 \
    || { tail -5 "$OFFICEFLOW_HOME/logs/roles.log"; die "roles bootstrap failed (see above)"; }
}

PIDS=()
STOPPING=0
stop_all() {
  trap - INT TERM EXIT
  STOPPING=1
  ((${#PIDS[@]})) || return 0
  log "stopping OfficeFlow"
  local pid alive
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 30); do
    alive=0
    for pid in "${PIDS[@]}"; do
      if kill -0 "$pid" 2>/dev/null; then alive=1; fi
    done
    if ((alive == 0)); then return 0; fi
    sleep 1
  done
  log "components still running after 30 s: killing them"
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}

start() {  # start NAME CMD...: own process group (so workers stop with it), log to .officeflow/logs/NAME.log
  local name="$1"; shift
  setsid "$@" >"$OFFICEFLOW_HOME/logs/$name.log" 2>&1 &
  PIDS+=("$!")
}

# The events relay runs in dev when its Kafka connection exists (AIRFLOW_CONN_KAFKA_DEFAULT in .env, or the
# connection OFFICEFLOW_EVENTS_KAFKA_CONN_ID names): `relay configured` decides, as the relay would look it up.
# Without Kafka it stays off and the outbox keeps every event. Sets RELAY_STATUS for the banner (no subshell:
# the relay's pid must reach PIDS, so Ctrl-C stops it with the rest).
RELAY_STATUS=""
start_relay_if_kafka() {
  local reason
  if reason="$(python -m plugins.officeflow_events.relay configured 2>/dev/null)"; then
    start relay python -m plugins.officeflow_events.relay
    log "events relay: outbox -> Kafka ($reason)"
    RELAY_STATUS="on, $reason; lag: http://${OFFICEFLOW_EVENTS_RELAY_METRICS_HOST:-127.0.0.1}:${OFFICEFLOW_EVENTS_RELAY_METRICS_PORT:-9465}/metrics"
  else
    reason="${reason:-the Kafka connection could not be checked}"
    log "events relay off: $reason; the outbox keeps every event"
    RELAY_STATUS="off ($reason): the outbox keeps every event; set AIRFLOW_CONN_KAFKA_DEFAULT in .env to publish them"
  fi
}

cmd_dev() {
  ensure_venv
  ensure_fonts
  ensure_dotenv
  airflow_env
  python -c 'from include.officeflow.settings import get_settings; get_settings()' \
    || die "fix the configuration above (.env or environment variables)"
  cmd_migrate
  log "serialising DAGs so the first webhook can start a run at once"
  airflow dags reserialize >"$OFFICEFLOW_HOME/logs/reserialize.log" 2>&1 \
    || { tail -30 "$OFFICEFLOW_HOME/logs/reserialize.log"; die "a DAG failed to import"; }
  export OFFICEFLOW_SANDBOX_PORT="${OFFICEFLOW_SANDBOX_PORT:-8900}"
  export OFFICEFLOW_SANDBOX_TLS_PORT="${OFFICEFLOW_SANDBOX_TLS_PORT:-8943}"
  log "integration sandbox (Google, Microsoft, Okta) on 127.0.0.1:$OFFICEFLOW_SANDBOX_PORT (TLS: $OFFICEFLOW_SANDBOX_TLS_PORT)"
  python -m sandbox.credentials --dir "$OFFICEFLOW_HOME/sandbox" \
    --base-url "http://127.0.0.1:$OFFICEFLOW_SANDBOX_PORT" \
    --tls-base-url "https://127.0.0.1:$OFFICEFLOW_SANDBOX_TLS_PORT" >/dev/null
  dev_component_env
  trap stop_all INT TERM EXIT
  start sandbox python -m sandbox --host 127.0.0.1 --port "$OFFICEFLOW_SANDBOX_PORT" \
    --tls-port "$OFFICEFLOW_SANDBOX_TLS_PORT" --credentials "$OFFICEFLOW_HOME/sandbox/credentials.json"
  start smtp-sink python -m sandbox.email.smtp_sink --port "$OFFICEFLOW_SMTP_PORT" --mailbox "$OFFICEFLOW_HOME/mailbox"
  start api-server airflow api-server --host "$AIRFLOW__API__HOST" --port "$OFFICEFLOW_PORT"
  start dag-processor airflow dag-processor
  start triggerer airflow triggerer
  if [[ "${OFFICEFLOW_DISPATCHER_MODE:-embedded}" == "external" ]]; then
    start dispatcher python -m plugins.officeflow_gateway.dispatcher
  fi
  start_relay_if_kafka
  log "waiting for http://localhost:$OFFICEFLOW_PORT (logs in .officeflow/logs/)"
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$OFFICEFLOW_PORT/officeflow/health/ready" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS "http://127.0.0.1:$OFFICEFLOW_PORT/officeflow/health/ready" >/dev/null 2>&1 \
    || die "api-server did not become ready; see .officeflow/logs/api-server.log"
  # The scheduler last: its first task runs (the maintenance DAGs are due at once) reach the api-server's
  # execution API, which refuses connections until it is up, and would fail their first try.
  start scheduler airflow scheduler
  cat <<EOF

  OfficeFlow is running.
    Airflow UI        http://localhost:$OFFICEFLOW_PORT      login: admin / ${OFFICEFLOW_ADMIN_PASSWORD:-(OFFICEFLOW_ADMIN_PASSWORD in .env)}
    Health            http://localhost:$OFFICEFLOW_PORT/officeflow/health
    Sample webhook    ./run.sh webhook          (in another terminal)
    Mailbox (.eml)    $OFFICEFLOW_HOME/mailbox/
    SaaS sandbox      http://127.0.0.1:$OFFICEFLOW_SANDBOX_PORT/_sandbox/docs   (state: /_sandbox/state/{google,microsoft,okta,slack,openai,bamboohr,workday})
    Events relay      $RELAY_STATUS
    Logs              $OFFICEFLOW_HOME/logs/
  Ctrl-C stops everything.

EOF
  wait -n "${PIDS[@]}" || true
  if ((STOPPING == 0)); then log "a component exited; see .officeflow/logs/"; fi
}

cmd_dispatcher() {
  ensure_venv
  airflow_env
  export OFFICEFLOW_DISPATCHER_MODE=external
  exec python -m plugins.officeflow_gateway.dispatcher
}

# The standalone edge gateway (plugins/officeflow_gateway/edge.py) on dev's store, Airflow home and settings: a
# delivery to it is stored as one to the api-server is, and its run is started by the dispatcher that
# OFFICEFLOW_DISPATCHER_MODE names (embedded: a thread of this process; external: dev's or `./run.sh dispatcher`).
cmd_gateway() {
  ensure_venv
  airflow_env
  dev_component_env
  export OFFICEFLOW_GATEWAY_HOST="${OFFICEFLOW_GATEWAY_HOST:-127.0.0.1}"
  export OFFICEFLOW_GATEWAY_PORT="${OFFICEFLOW_GATEWAY_PORT:-8090}"
  python -c 'from include.officeflow.settings import get_settings; get_settings()' \
    || die "fix the configuration above (.env or environment variables)"
  # Every delivery is stored: the store must be at the code's revision. `dev` migrates it (and Airflow's DB) at start.
  python -c '
import sys
from include.officeflow.settings import get_settings
from include.officeflow.store.db import current_revision, head_revision
url = get_settings().db_url
try:
    current = current_revision(url)
except Exception as exc:
    sys.exit(f"cannot read the OfficeFlow store at {url}: {exc}")
if current != head_revision():
    sys.exit(f"the OfficeFlow store at {url} is at revision {current}, not {head_revision()}: it is not migrated")
' || die "start ./run.sh dev once (it migrates the store and Airflow's DB; keep it running, or Ctrl-C it), or run ./run.sh migrate; then ./run.sh gateway again"
  # Several uvicorn workers share their counters through a folder (of their own, emptied at each start).
  if ((${OFFICEFLOW_GATEWAY_WORKERS:-1} > 1)) && [[ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]]; then
    export PROMETHEUS_MULTIPROC_DIR="$OFFICEFLOW_HOME/gateway-metrics"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
  fi
  local host="$OFFICEFLOW_GATEWAY_HOST" mode="${OFFICEFLOW_DISPATCHER_MODE:-embedded}" runs="created in this process"
  if [[ "$host" == "0.0.0.0" || "$host" == "::" ]]; then host=127.0.0.1; fi
  if [[ "$mode" == external ]]; then runs="created by the dispatcher of ./run.sh dev (or ./run.sh dispatcher)"; fi
  local url="http://$host:$OFFICEFLOW_GATEWAY_PORT/officeflow"
  cat <<EOF

  OfficeFlow edge gateway on $url   (Ctrl-C stops it)
    Webhooks          POST $url/webhooks/<endpoint id>
    Sample webhook    ./run.sh webhook --url $url/webhooks/bamboohr
    Health            $url/health   (/live, /ready)
    Metrics           $url/metrics
    Runs              $runs (OFFICEFLOW_DISPATCHER_MODE=$mode)
  The UI, the management API, and Slack, calendar and email callbacks stay on the api-server (./run.sh dev).

EOF
  exec python -m plugins.officeflow_gateway.edge
}

cmd_relay() {
  ensure_venv
  airflow_env
  # The store's tables first, as ./run.sh dev makes them (a no-op once migrated): a fresh checkout's
  # `relay lag` answers {"unsent": 0, ...} instead of failing on a missing table.
  if [[ "${1:-}" != "configured" ]]; then python -m include.officeflow.store migrate >&2; fi
  exec python -m plugins.officeflow_events.relay "$@"
}

cmd_webhook() {
  ensure_venv
  airflow_env
  python -m sandbox.bamboohr.sender --url "http://127.0.0.1:$OFFICEFLOW_PORT/officeflow/webhooks/bamboohr" "$@"
}

cmd_test() {
  ensure_venv
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$VENV/bin:$PATH"
  local tier="${1:-}" args=()
  case "$tier" in
    unit) shift; args=(tests/unit) ;;  # no services: nothing to install or start
    integration|e2e|chaos|deploy) shift; args=("tests/$tier") ;;
    coverage) shift
      args=(--cov=include --cov=operators --cov=plugins --cov=dags --cov-report=term-missing:skip-covered) ;;
  esac
  if [[ "$tier" != unit ]]; then
    ensure_tools
    ensure_services
    ensure_fonts
    ensure_minio
    ensure_kafka
    ensure_chromium
    export OFFICEFLOW_POSTGRES_BIN="${OFFICEFLOW_POSTGRES_BIN:-$(postgres_bin)}"
  fi
  python -m pytest "${args[@]}" "$@"
}

cmd_seed() {
  ensure_venv
  airflow_env
  python -m scripts.seed "$@"
}

cmd_db_reset() {
  ensure_venv
  airflow_env
  if curl -fsS "http://127.0.0.1:$OFFICEFLOW_PORT/officeflow/health/live" >/dev/null 2>&1; then
    die "OfficeFlow is running on port $OFFICEFLOW_PORT: stop ./run.sh dev first"
  fi
  if [[ "${1:-}" != "--yes" ]]; then
    printf 'This deletes every DAG run, webhook event and endpoint, workflow, email and document record in\n'
    printf '  %s\n  %s\nand the stored document files in %s.\n' "$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" \
      "${OFFICEFLOW_DB_URL:-the dev store ($OFFICEFLOW_HOME/officeflow.db)}" "$OFFICEFLOW_HOME/documents/"
    local answer
    read -r -p "Type 'reset' to go on: " answer
    [[ "$answer" == "reset" ]] || die "nothing changed"
  fi
  log "resetting Airflow's metadata DB"
  airflow db reset --yes >"$OFFICEFLOW_HOME/logs/db-reset.log" 2>&1 \
    || { tail -30 "$OFFICEFLOW_HOME/logs/db-reset.log"; die "airflow db reset failed"; }
  log "resetting the OfficeFlow store"
  python -m include.officeflow.store reset --yes
  rm -rf "$OFFICEFLOW_HOME/documents" "$OFFICEFLOW_HOME/workflows-snapshot.json"
  log "done: ./run.sh dev starts on empty databases"
}

cmd_migration() {
  [[ -n "${1:-}" ]] || die "usage: ./run.sh migration NAME   (e.g. ./run.sh migration add_teams)"
  ensure_venv
  export PYTHONPATH="$ROOT"
  "$VENV/bin/python" -m include.officeflow.store revision "$1"
}

run_bench() {  # run_bench SCRIPT ARGS...: the benchmarks start their own PostgreSQL (and Airflow)
  local script="$1"; shift
  ensure_venv
  ensure_services
  export PYTHONPATH="$ROOT"
  export OFFICEFLOW_POSTGRES_BIN="${OFFICEFLOW_POSTGRES_BIN:-$(postgres_bin)}"
  "$VENV/bin/python" "bench/$script" "$@"
}

cmd_bench() { run_bench webhook_to_success.py "$@"; }
cmd_bench_onboarding() { run_bench onboarding_runtime.py "$@"; }
cmd_chaos() {
  ensure_venv
  ensure_services
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PATH="$VENV/bin:$PATH"
  export OFFICEFLOW_POSTGRES_BIN="${OFFICEFLOW_POSTGRES_BIN:-$(postgres_bin)}"
  export OFFICEFLOW_CHAOS_PROFILE="${1:-full}" OFFICEFLOW_CHAOS_REPORT="$ROOT/.officeflow/chaos-report.txt"
  mkdir -p "$ROOT/.officeflow"
  python -m pytest tests/chaos -p no:cacheprovider -q
  log "report: $OFFICEFLOW_CHAOS_REPORT"
}
cmd_bench_relay() { ensure_kafka; run_bench relay_throughput.py "$@"; }
cmd_bench_gateway() {
  command -v wrk >/dev/null 2>&1 || { log "installing wrk from apt"; apt_install wrk; }
  run_bench gateway_bench.py "$@"
}

cmd_lint() {
  ensure_venv
  export PYTHONPATH="$ROOT"
  "$VENV/bin/ruff" check .
  "$VENV/bin/mypy"
  # The layers (docs/architecture.md): an upward import or an import cycle fails here.
  "$VENV/bin/lint-imports" --no-logo --no-cache
  "$VENV/bin/shellcheck" run.sh scripts/*.sh scripts/lib/*.sh scripts/kafka/*.sh .ci/run
  "$VENV/bin/hadolint" Dockerfile
}

cmd_clean() {
  log "removing .officeflow/ (local databases, mailbox, documents, logs)"
  rm -rf "$ROOT/.officeflow"
  if [[ "${1:-}" == "--all" ]]; then
    log "removing .venv/ and .env"
    rm -rf "$VENV" "$ROOT/.env"
  fi
}

case "${1:-help}" in
  dev) shift; cmd_dev "$@" ;;
  test) shift; cmd_test "$@" ;;
  migrate) shift; cmd_migrate "$@" ;;
  webhook) shift; cmd_webhook "$@" ;;
  dispatcher) shift; cmd_dispatcher "$@" ;;
  gateway) shift; cmd_gateway "$@" ;;
  relay) shift; cmd_relay "$@" ;;
  lint) shift; cmd_lint "$@" ;;
  seed) shift; cmd_seed "$@" ;;
  db-reset) shift; cmd_db_reset "$@" ;;
  migration) shift; cmd_migration "$@" ;;
  bench) shift; cmd_bench "$@" ;;
  bench-gateway) shift; cmd_bench_gateway "$@" ;;
  bench-onboarding) shift; cmd_bench_onboarding "$@" ;;
  bench-relay) shift; cmd_bench_relay "$@" ;;
  chaos) shift; cmd_chaos "$@" ;;
  clean) shift; cmd_clean "$@" ;;
  build) shift; cmd_build "$@" ;;
  tools) shift; cmd_tools "$@" ;;
  help|-h|--help) usage ;;
  *) usage; exit 2 ;;
esac
