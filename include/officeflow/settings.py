"""OfficeFlow configuration, in one place.

Layers, highest first: process environment variables, the ``.env`` file at the repository root
(or the file named by ``OFFICEFLOW_ENV_FILE``), then the defaults below. Every process (api-server
plugin, scheduler, workers, tests) reads the same model, validated when first loaded, so a bad
value stops the component at start-up with a message naming the variable.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_PRODUCTION_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """Raised when the OfficeFlow configuration is invalid; the message lists every problem."""


class Settings(BaseSettings):
    """Validated OfficeFlow settings (environment variables use the ``OFFICEFLOW_`` prefix)."""

    model_config = SettingsConfigDict(
        env_prefix="OFFICEFLOW_",
        env_file=os.environ.get("OFFICEFLOW_ENV_FILE", str(REPO_ROOT / ".env")),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    env: Literal["dev", "test", "production"] = Field(
        default="dev", description="Deployment mode; 'production' enforces strong secrets."
    )
    home: Path = Field(
        default=REPO_ROOT / ".officeflow",
        description="Local state folder for dev mode (SQLite files, mailbox, documents).",
    )
    service_name: str = Field(
        default="officeflow", min_length=1, max_length=64,
        description="The `service` field of OfficeFlow's structured log lines (docs/observability.md).",
    )
    version: str = Field(
        default="", max_length=64,
        description="The `version` field of log lines: the deployed release (the image tag); empty = the code's "
        "own version (include/officeflow/__init__.py).",
    )
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines of OfficeFlow's gateway in the api-server: `json` (one object per line) or `text` "
        "(human-readable); unset = `json` when OFFICEFLOW_ENV=production, `text` otherwise. Task logs are "
        "Airflow's (JSON lines) either way.",
    )
    health_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30,
        description="Longest one dependency check of /officeflow/health may take before it reports a timeout.",
    )
    db_url: str = Field(
        default="",
        description="SQLAlchemy URL of the OfficeFlow store; defaults to a SQLite file under home.",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AIRFLOW__API_AUTH__JWT_SECRET", "OFFICEFLOW_JWT_SECRET"),
        description="Secret that signs Airflow/OfficeFlow API tokens (Airflow's [api_auth] jwt_secret).",
    )
    bamboohr_webhook_key: SecretStr | None = Field(
        default=None,
        description="Private key of the BambooHR webhook (shown once when the webhook is created).",
    )
    bamboohr_conn_id: str = Field(
        default="officeflow_bamboohr", min_length=1,
        description="Airflow connection of BambooHR's API (host = https://api.bamboohr.com/api/gateway.php/<company>"
                    "/v1, login = API key, password = x): the records of events posted without field values.",
    )
    webhook_replay_window_seconds: int = Field(
        default=300, ge=1, le=3600, description="Max age (and future skew) of a signed timestamp."
    )
    webhook_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest webhook body accepted (413 above it)."
    )
    webhook_default_rate_limit_per_minute: int = Field(
        default=6000, ge=1, description="Rate limit of the built-in BambooHR endpoint (deliveries/min)."
    )
    webhook_secret_overlap_seconds: int = Field(
        default=86_400, ge=0, le=30 * 86_400,
        description="Default window in which a rotated-out endpoint secret still verifies.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "OFFICEFLOW_REDIS_URL"),
        description="Redis for rate-limit buckets shared by api-server replicas (in-process without it).",
    )
    dispatch_max_attempts: int = Field(
        default=10, ge=1, description="Trigger attempts before an event is dead-lettered."
    )
    dispatch_base_delay_seconds: float = Field(
        default=2.0, gt=0, description="First retry delay of the dispatcher; doubles per attempt."
    )
    dispatch_max_delay_seconds: float = Field(default=300.0, gt=0, description="Cap of the retry delay.")
    dispatch_duty_cycle: float = Field(
        default=0.5, gt=0, le=1,
        description="Share of an api-server process's CPU the dispatcher may use while creating runs.",
    )
    dispatch_poll_seconds: float = Field(
        default=5.0, gt=0, description="How often the dispatcher looks for due events without a wake-up."
    )
    events_kafka_conn_id: str = Field(
        default="kafka_default",
        description="Airflow connection (type kafka; its extra is the librdkafka config) the events relay uses.",
    )
    events_topic_partitions: int = Field(
        default=3, ge=1, description="Partitions of each officeflow.events.<area> topic the relay creates."
    )
    events_topic_replication: int = Field(
        default=1, ge=1, description="Replication factor of the topics the relay creates (3 on a real cluster)."
    )
    events_relay_batch: int = Field(
        default=500, ge=1,
        description="Outbox rows the relay claims at once: most of a pass's cost is fixed (two store "
        "transactions, the claim's queries, a Kafka round trip), so larger batches go faster "
        "(bench/relay_throughput.py).",
    )
    events_relay_delivery_timeout_seconds: float = Field(
        default=10.0, gt=0,
        description="How long the relay waits for Kafka to acknowledge a batch (librdkafka message.timeout.ms) "
        "before giving the rows back for a retry.",
    )
    events_relay_lease_seconds: float = Field(
        default=60.0, gt=0,
        description="How long a relay holds the rows it claimed; another relay may claim them afterwards. "
        "Must exceed the delivery timeout.",
    )
    events_relay_max_delay_seconds: float = Field(
        default=30.0, gt=0, description="Cap of the relay's backoff while Kafka is down (1 s doubling)."
    )
    events_relay_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle relay looks for new outbox rows."
    )
    events_relay_metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the relay's /metrics (Prometheus) and /healthz endpoint listens on "
        "(0.0.0.0 in a container, so probes and Prometheus reach it).",
    )
    events_relay_metrics_port: int = Field(
        default=9465, ge=0, le=65535,
        description="Port of the relay's /metrics and /healthz endpoint; 0 turns it off.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Prometheus must send to GET /officeflow/metrics (Authorization: Bearer ...); "
        "unset, the route is open: keep it off the public address then (docs/observability.md).",
    )
    events_outbox_retention_days: float = Field(
        default=7.0, gt=0,
        description="Days a sent outbox row is kept (to look at what was published); the relay deletes older "
        "ones. Unsent rows are never deleted.",
    )
    events_outbox_purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="How often the relay purges sent rows past the retention."
    )
    events_outbox_purge_batch: int = Field(
        default=1000, ge=1, description="Rows the relay's purge deletes per transaction."
    )
    hr_events_topic: str | None = Field(
        default=None, min_length=1, max_length=58, pattern=r"^[A-Za-z0-9._-]+$",
        description="Kafka topic of inbound HR events: set, the hr_events_from_kafka DAG watches it (an AssetWatcher "
        "in the triggerer) and starts the HR workflows; unset (the default), the DAG is not defined.",
    )
    hr_events_kafka_conn_id: str = Field(
        default="kafka_default",
        description="Airflow connection (type kafka) the HR events watcher consumes with; its extra needs group.id.",
    )
    hr_events_topic_partitions: int = Field(default=3, ge=1, description="Partitions of the HR events topic.")
    hr_events_topic_replication: int = Field(
        default=1, ge=1, description="Replication factor of the HR events topic (3 on a real cluster)."
    )
    hr_events_organization_id: str = Field(
        default="default", min_length=1,
        description="Organization (tenant) of the runs HR events from Kafka start; never taken from a message.",
    )
    hr_events_poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="How long the watcher waits after a skipped message before polling again.",
    )
    workday_conn_id: str = Field(
        default="officeflow_workday",
        description="Airflow connection (type http) of Workday's workers report (RaaS) the workday_reconciliation DAG "
        "reads: host = the report's URL, login/password = the integration system user's.",
    )
    workday_reconcile_schedule: str | None = Field(
        default="@hourly",
        description="When the workday_reconciliation DAG looks for hires, terminations and job changes Workday's "
        "notifications missed (a cron expression or preset); empty or `none`: only when someone triggers it.",
    )
    workday_reconcile_window_days: int = Field(
        default=14, ge=1, le=366,
        description="The reconciliation considers hires, terminations and job changes effective in the last this many "
        "days (and future ones); older ones are history, not missed events.",
    )
    workday_organization_id: str = Field(
        default="default", min_length=1,
        description="Organization (tenant) of the runs the Workday reconciliation starts; its Workday endpoints' "
        "events are the ones it checks against.",
    )
    dispatcher_mode: Literal["embedded", "external"] = Field(
        default="embedded",
        description="`embedded`: a dispatcher thread in each api-server process (dev, small installs). "
        "`external`: api-servers only accept; `./run.sh dispatcher` (the Helm chart's dispatcher "
        "Deployment) creates the runs, so bursts of deliveries do not share CPU with run creation.",
    )
    db_pool_size: int = Field(
        default=20, ge=1, le=200,
        description="Connections kept open to the OfficeFlow store per process (PostgreSQL).",
    )
    gateway_host: str = Field(
        default="127.0.0.1",
        description="Address the standalone edge gateway (`./run.sh gateway`) listens on (`0.0.0.0` in containers).",
    )
    gateway_port: int = Field(default=8090, ge=1, le=65535,
                              description="Port of the standalone edge gateway.")
    gateway_workers: int = Field(default=1, ge=1, le=64,
                                 description="uvicorn worker processes of the standalone edge gateway.")
    identity_groups_file: Path | None = Field(
        default=None,
        description="YAML mapping department/role -> groups per identity provider "
        "(include/identity/groups.yaml when unset).",
    )
    onboarding_dag_id: str = Field(
        default="employee_onboarding", description="DAG started by a BambooHR employee.created event."
    )
    offboarding_dag_id: str = Field(
        default="employee_offboarding",
        description="DAG started by a BambooHR employee.terminated or employee.deleted event (built-in endpoint).",
    )
    role_change_dag_id: str = Field(
        default="employee_role_change",
        description="DAG started by a BambooHR employee.job_changed event (built-in endpoint).",
    )
    smtp_host: str = Field(default="127.0.0.1", description="Host of the dev-mode SMTP sink.")
    smtp_port: int = Field(default=2525, ge=1, le=65535, description="Port of the dev-mode SMTP sink.")
    mailbox_dir: Path | None = Field(
        default=None, description="Where the dev-mode SMTP sink writes .eml files (home/mailbox)."
    )
    documents_dir: Path | None = Field(
        default=None, description="Local documents folder in dev mode (home/documents)."
    )
    documents_url: str = Field(
        default="",
        description="Where documents are stored: `s3://bucket/prefix` (through the Airflow connection "
        "`documents_aws_conn_id`), or a local folder / `file://` URI; empty = `documents_dir` (dev mode).",
    )
    documents_aws_conn_id: str = Field(
        default="officeflow_s3", description="Airflow `aws` connection used for an `s3://` documents_url."
    )
    documents_font_dir: Path | None = Field(
        default=None,
        description="Folder with DejaVuSans*.ttf for PDF rendering (Unicode text); the system's DejaVu "
        "fonts when unset, else the PDF core fonts (Latin-1 text only).",
    )
    document_share_max_seconds: int = Field(
        default=7 * 86_400, ge=1, le=7 * 86_400,
        description="Longest lifetime of a document share link (presigned URL); S3 allows at most 7 days.",
    )
    # Documents API: uploads and soft delete (docs/documents.md).
    documents_max_upload_bytes: int = Field(
        default=25 * 1_048_576, ge=1,
        description="Largest file accepted by POST /officeflow/api/v1/documents (and .../versions); 413 above it.",
    )
    documents_retention_days: int = Field(
        default=30, ge=0, le=3650,
        description="Days a deleted document's bytes are kept (restorable) before the purge removes them.",
    )
    email_brands_file: Path | None = Field(
        default=None,
        description="YAML of per-organization email branding (include/templates/email/brands.yaml when unset).",
    )
    sns_trusted_url_pattern: str = Field(
        default=r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/",
        description="Regex an SNS SigningCertURL / SubscribeURL must match (Amazon's SNS hosts over https; "
        "tests point it at a local certificate server).",
    )
    ses_sns_topic_arns: list[str] = Field(
        default_factory=list,
        description="SNS topics whose SES notifications are accepted (JSON list); empty accepts any topic.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None,
        description="SendGrid Event Webhook verification key (base64 DER, ECDSA P-256) from SendGrid's settings.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="Slack app's signing secret: verifies clicks on approval buttons "
        "(POST /officeflow/slack/interactions); unset = every interaction is refused.",
    )
    approval_settle_seconds: float = Field(
        default=10.0, ge=0,
        description="How long an approval task must have been parked (awaiting input) before a stored Slack "
        "click is applied: the bound on the parking worker's exit reaching its executor. The click also waits "
        "for a whole loop of the scheduler that queued the task after that (docs/slack-and-calendar.md).",
    )
    approval_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the api-server looks at stored Slack approval clicks to apply."
    )
    default_identity_provider: Literal["google", "microsoft", "okta"] = Field(
        default="google",
        description="Identity provider the HR workflows use when a run does not name one (the company's).",
    )
    default_time_zone: str = Field(
        default="UTC",
        description="IANA time zone the HR workflows' forms preset (first-day meetings are booked in the run's).",
    )
    calendar_provider: Literal["google", "microsoft"] = Field(
        default="google", description="Calendar the HR workflows book first-day meetings in.",
    )
    people_team_email: str = Field(
        default="",
        description="People team address: approves when a hire has no manager e-mail, organizes meetings "
        "that have no other organizer; a Slack user with this e-mail must exist for approvals.",
    )
    it_team_email: str = Field(
        default="", description="Organizer of the new hire's IT setup meeting (people_team_email when unset).",
    )
    slack_approvals_channel: str = Field(
        default="#general", description="Slack channel where the HR workflows post approval requests.",
    )
    insights_slack_channel: str = Field(
        default="#general", description="Slack channel where the weekly workflow_insights report is posted.",
    )
    workflow_store_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60,
        description="Longest the DAG factory waits for the store (connect, then query) before it builds the "
        "stored workflows from its snapshot.",
    )
    workflows_snapshot_file: Path | None = Field(
        default=None,
        description="Where the DAG factory keeps its snapshot of the stored workflows (home/workflows-snapshot.json).",
    )
    offboarding_retention_days: int = Field(
        default=30, ge=0, le=3650,
        description="Days a leaver's suspended accounts are kept before employee_offboarding deletes them.",
    )

    auth_login_max_failures: int = Field(
        default=5, ge=1, le=100,
        description="Failed logins (per user name and per client address) within the window before logins "
        "answer 429 with Retry-After.",
    )
    auth_login_window_seconds: int = Field(
        default=900, ge=10, le=86_400, description="The login-throttling window (15 minutes by default).",
    )
    auth_trusted_proxies: list[str] = Field(
        default_factory=list,
        description="CIDRs of reverse proxies / ingress controllers whose X-Forwarded-For names the client "
        "(JSON list); empty = the TCP peer is the client.",
    )
    auth_refresh_token_seconds: int = Field(
        default=7 * 86_400, ge=60, le=90 * 86_400,
        description="Lifetime of a refresh token from POST /officeflow/api/v1/auth/login (access tokens "
        "live [api_auth] jwt_expiration_time).",
    )
    auth_mfa_required_roles: list[str] = Field(
        default_factory=list,
        description="Roles whose users must enrol in TOTP MFA (JSON list, e.g. [\"OfficeFlow Admin\"]): until "
        "they do, POST /auth/token refuses them and the OfficeFlow API answers 403 mfa_enrolment_required.",
    )
    auth_mfa_issuer: str = Field(default="OfficeFlow", description="Issuer name authenticator apps show.")
    password_min_length: int = Field(
        default=12, ge=8, le=128,
        description="Shortest password for database users; it also needs 3 of: lower case, upper case, "
        "digit, symbol.",
    )
    workflow_access: dict[str, list[str]] = Field(
        default_factory=lambda: {"people": ["HR Manager"], "onboarding": ["HR Manager"], "it": ["IT Operator"]},
        description="DAG tag -> roles that may see, trigger and manage workflows with that tag (JSON). "
        "OfficeFlow Admin, Admin and Op reach every workflow; Auditor and Viewer read them all.",
    )

    # --- calendar sync (docs/slack-and-calendar.md) ---
    calendar_notifications_url: str = Field(
        default="",
        description="Public URL of the OfficeFlow app (https://airflow.example.com/officeflow) that Google and "
        "Microsoft post calendar notifications to (+ /calendar/<provider>/notifications); empty = "
        "AIRFLOW__API__BASE_URL + /officeflow, and no subscriptions when neither is set.",
    )
    calendar_change_action: Literal["notify", "rebook"] = Field(
        default="notify",
        description="What a declined first-day meeting leads to: `notify` (the organizer is told in Slack) or "
        "`rebook` (OfficeFlow moves it to the next slot in which the organizer and every attendee are free, asks "
        "everyone again, and tells the organizer where it went). Moves and cancellations are told either way.",
    )
    calendar_rebook_search_days: int = Field(
        default=14, ge=1, le=60,
        description="How many days after a declined meeting rebooking looks for a common free slot.",
    )
    calendar_reminder_lead_minutes: int = Field(
        default=60, ge=5, le=7 * 24 * 60,
        description="How long before a booked meeting calendar_maintenance reminds its organizer in Slack.",
    )
    calendar_renew_before_minutes: int = Field(
        default=24 * 60, ge=10, le=7 * 24 * 60,
        description="calendar_maintenance renews a watch channel / Graph subscription expiring within this time.",
    )

    ai_enabled: bool = Field(
        default=True,
        description="AI personalisation, extraction and suggestions for organizations whose settings do not say "
                    "otherwise (an organization's settings.ai.enabled wins). Off: every workflow takes its plain path.",
    )
    ai_conn_id: str = Field(
        default="officeflow_openai",
        description="The Airflow connection of the OpenAI-compatible API (host = base URL, password = API key).",
    )
    ai_model: str = Field(default="gpt-4o-mini", min_length=1, description="The model every prompt uses.")
    ai_timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="Timeout of one API call.")
    ai_max_retries: int = Field(
        default=3, ge=0, le=10,
        description="Retries of one call on 429 (after Retry-After), 5xx, timeouts and connection errors, with "
                    "exponential backoff (the openai client's own).",
    )
    ai_output_attempts: int = Field(
        default=3, ge=1, le=5,
        description="Answers asked for when the model's structured output is invalid (the errors are sent back).",
    )
    ai_monthly_budget_usd: float = Field(
        default=25.0, ge=0,
        description="Estimated spend per organization and calendar month (UTC) after which AI is switched off for "
                    "it until the next month (an organization's settings.ai.monthly_budget_usd wins).",
    )
    ai_prices: dict[str, tuple[float, float]] = Field(
        default={"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00), "gpt-4.1-mini": (0.40, 1.60),
                 "gpt-4.1": (2.00, 8.00)},
        description="USD per million input and output tokens, per model (JSON); a model not listed is "
                    "costed at the most expensive listed price.",
    )

    @field_validator("workday_reconcile_schedule", mode="before")
    @classmethod
    def _no_schedule(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @field_validator("default_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @model_validator(mode="after")
    def _fill_and_check(self) -> Settings:
        self.home = self.home.expanduser().resolve()
        if not self.db_url:
            self.db_url = f"sqlite:///{self.home / 'officeflow.db'}"
        self.mailbox_dir = (self.mailbox_dir or self.home / "mailbox").expanduser().resolve()
        self.documents_dir = (self.documents_dir or self.home / "documents").expanduser().resolve()
        if self.log_format is None:
            self.log_format = "json" if self.env == "production" else "text"
        if self.events_relay_lease_seconds <= self.events_relay_delivery_timeout_seconds:
            # A lease running out while Kafka may still acknowledge would let a second relay publish the rows.
            raise ValueError("OFFICEFLOW_EVENTS_RELAY_LEASE_SECONDS must exceed "
                             "OFFICEFLOW_EVENTS_RELAY_DELIVERY_TIMEOUT_SECONDS")
        if self.env == "production":
            problems = []
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
                problems.append(
                    "AIRFLOW__API_AUTH__JWT_SECRET (or OFFICEFLOW_JWT_SECRET) must be at least "
                    f"{MIN_PRODUCTION_SECRET_LENGTH} characters in production (got {len(secret)})"
                )
            if self.db_url.startswith("sqlite"):
                problems.append("OFFICEFLOW_DB_URL must point at a server database in production, not SQLite")
            if problems:
                raise ValueError("; ".join(problems))
        return self


def load_settings(**overrides: object) -> Settings:
    """Build and validate settings; raise :class:`ConfigurationError` with a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"OFFICEFLOW_{where.upper()}" if err["loc"] else where
            lines.append(f"  - {name}: {err['msg']}")
        raise ConfigurationError("Invalid OfficeFlow configuration:\n" + "\n".join(lines)) from None


class _LoadedOnce:
    """The process-wide settings, loaded once; ``cache_clear()`` makes the next call load them again.

    Unlike ``functools.lru_cache``, a load that began before a ``cache_clear()`` (a background thread
    reading the environment just before it changed) is returned to its caller but never cached, so
    the cache cannot go back to settings older than the last clear.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._generation = 0

    def __call__(self) -> Settings:
        settings = self._settings
        if settings is not None:
            return settings
        generation = self._generation
        settings = load_settings()
        with self._lock:
            if generation == self._generation:
                self._settings = settings
        return settings

    def cache_clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._settings = None


get_settings = _LoadedOnce()
