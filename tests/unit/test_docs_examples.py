"""Every example in the README and docs/ (each ```bash, ```json, ```yaml and ```python block) is run by a test, or
says here why it is not (an excerpt of a larger file, a command for a person at a terminal). A new example without
an entry fails this test: add the test that runs it, then its entry."""

from __future__ import annotations

from tests.harness.docs import ROOT, code_blocks

LANGUAGES = ("bash", "json", "yaml", "python")

# (document, a fragment of the block) -> the test that runs it, or "not run: why".
EXAMPLES: dict[tuple[str, str], str] = {
    ("README.md", "./run.sh dev     # install"): "not run: starts the platform for a person; the e2e suite starts "
                                                 "the same processes (tried from a fresh clone before each release)",
    ("README.md", "./run.sh webhook"): "tests/e2e/test_docs_examples_e2e.py",
    ("README.md", "identity_provisioning/dagRuns"): "tests/e2e/test_docs_examples_e2e.py",
    ("README.md", '"name": "HR hires"'): "tests/integration/plugins/test_readme_examples.py",
    ("README.md", '{"type": "person.hired"'): "tests/integration/plugins/test_readme_examples.py",
    ("README.md", "docker-compose.yaml config -q"): "tests/deploy/test_compose.py",
    ("README.md", "helm install officeflow"): "tests/deploy/test_docs.py",
    ("README.md", "./run.sh test                # everything"): ".ci/run",
    ("docs/BENCHMARKS.md", "./run.sh bench-gateway"): "not run: a benchmark (minutes of full load on the machine)",
    ("docs/RELIABILITY.md", "./run.sh chaos"): "tests/chaos/test_chaos.py",
    ("docs/ai.md", "name: equipment_details"): "not run: an excerpt of include/officeflow/ai/prompts/"
                                               "equipment_details.yaml, which tests/unit/include/test_ai.py loads",
    ("docs/ai.md", "equipment_request/dagRuns"): "tests/e2e/test_ai_e2e.py",
    ("docs/ai.md", "ai-usage"): "tests/e2e/test_ai_e2e.py",
    ("docs/auth.md", "access: [HR Manager]"): "tests/integration/plugins/test_workflows_api.py",
    ("docs/auth.md", "/access/users/hr.manager/organizations"): "tests/e2e/test_auth_docs.py",
    ("docs/auth.md", "tokens.json"): "tests/e2e/test_auth_docs.py",
    ("docs/auth.md", "audit-log.csv"): "tests/e2e/test_auth_docs.py",
    ("docs/auth.md", "OFFICEFLOW_NEW_USER_PASSWORD"): "tests/e2e/test_auth_docs.py",
    ("docs/deployment.md", "docker-build-push.sh --help"): "tests/deploy/test_image_scripts.py",
    ("docs/deployment.md", "./run.sh build"): "tests/deploy/test_image_scripts.py",
    ("docs/deployment.md", "--profile sandbox config -q"): "tests/deploy/test_compose.py",
    ("docs/deployment.md", "docker-security-scan.sh --config-only"): "tests/deploy/test_image_scripts.py",
    ("docs/deployment.md", "./run.sh test tests/deploy/test_image.py"): "tests/deploy/test_image.py",
    ("docs/deployment.md", "kubectl create namespace officeflow"): "tests/deploy/test_docs.py",
    ("docs/deployment.md", "helm upgrade officeflow helm/officeflow --namespace officeflow \\\n"):
        "tests/deploy/test_docs.py",
    ("docs/deployment.md", "patch secret officeflow-secrets"): "tests/deploy/test_docs.py",
    ("docs/deployment.md", "./run.sh gateway"): "tests/deploy/test_run_gateway.py",
    ("docs/deployment.md", "--reuse-values"): "tests/deploy/test_docs.py",
    ("docs/deployment.md", "k8s-deploy.sh --values staging"): "tests/deploy/test_deploy_scripts.py",
    ("docs/deployment.md", "k8s-deploy.sh --context prod"): "tests/deploy/test_deploy_scripts.py",
    ("docs/deployment.md", "--strategy rolling|blue-green|canary"): "not run: the synopsis of the three below",
    ("docs/deployment.md", "--strategy rolling --environment production"): "tests/deploy/test_deploy_on_cluster.py",
    ("docs/deployment.md", "--strategy blue-green --environment production"):
        "tests/deploy/test_deploy_on_cluster.py",
    ("docs/deployment.md", "--strategy canary --environment production"): "tests/deploy/test_deploy_on_cluster.py",
    ("docs/documents.md", "-F file=@contract.pdf"): "tests/e2e/test_documents_api_e2e.py",
    ("docs/documents.md", "-X DELETE"): "tests/e2e/test_documents_api_e2e.py",
    ("docs/documents.md", "documents.retention purge"): "tests/integration/plugins/test_documents_upload.py",
    ("docs/email.md", "welcome-override.json"): "tests/e2e/test_email_templates_e2e.py",
    ("docs/email.md", "frist_name"): "tests/e2e/test_email_templates_e2e.py",
    ("docs/email.md", "versions/1/restore"): "tests/e2e/test_email_templates_e2e.py",
    ("docs/events.md", "from include.officeflow.events.outbox import add_event"):
        "not run: the shape of a call inside a change's transaction (`...` is the change)",
    ("docs/events.md", '"bamboohr-4711-created"'): "tests/integration/include/test_hr_events_inbound.py",
    ("docs/gateway.md", '"adapter": "bamboohr"'): "tests/integration/plugins/test_readme_examples.py",
    ("docs/gateway.md", '"adapter": "workday"'): "tests/integration/plugins/test_readme_examples.py",
    ("docs/gateway.md", '"employee.updated"'): "tests/integration/plugins/test_readme_examples.py",
    ("docs/gateway.md", "AIRFLOW_CONN_OFFICEFLOW_BAMBOOHR"): "tests/integration/plugins/test_readme_examples.py",
    ("docs/gateway.md", "AIRFLOW_CONN_OFFICEFLOW_WORKDAY"): "tests/integration/plugins/test_workday_reconciliation.py",
    ("docs/gateway.md", "/workday/sandbox/workers/21100"): "tests/e2e/test_docs_examples_e2e.py",
    ("docs/gateway.md", "workday_reconciliation/dagRuns"): "tests/e2e/test_docs_examples_e2e.py",
    ("docs/gateway.md", "/events/replay"): "tests/integration/plugins/test_readme_examples.py",
    ("docs/gateway.md", "test_api_fuzz.py"): "tests/integration/plugins/test_api_fuzz.py",
    ("docs/identity.md", "identity_provisioning/dagRuns"): "tests/e2e/test_docs_examples_e2e.py",
    ("docs/observability.md", "scrape_configs:"): "not run: an excerpt of a Prometheus configuration (needs a "
                                                  "Prometheus server in a cluster)",
    ("docs/slack-and-calendar.md", "act/view_submission"): "tests/integration/plugins/test_slack_commands.py",
    ("docs/slack-and-calendar.md", "/calendar/changes"): "tests/e2e/test_calendar_sync_e2e.py",
    ("docs/teams.md", "provisioning.json"): "tests/e2e/test_teams_e2e.py",
    ("docs/teams.md", "/organizations/acme/teams"): "tests/e2e/test_teams_e2e.py",
    ("docs/teams.md", "changed.json"): "tests/e2e/test_teams_e2e.py",
    ("docs/teams.md", "removed.json"): "tests/e2e/test_teams_e2e.py",
    ("docs/workflows.md", "name: new_contractor_welcome        #"): "tests/unit/include/test_workflows.py",
    ("docs/workflows.md", '"code": "invalid_workflow"'): "tests/integration/plugins/test_workflows_api.py",
    ("docs/workflows.md", "my_workflow.json"): "tests/e2e/test_docs_examples_e2e.py",
    ("docs/workflows.md", '-X DELETE "$API/my_workflow"'): "tests/e2e/test_docs_examples_e2e.py",
}


def documented_blocks() -> list[tuple[str, str]]:
    documents = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
    return [(doc, block) for doc in documents for language in LANGUAGES for block in code_blocks(doc, language)]


def test_every_documented_example_has_exactly_one_entry():
    unlisted, ambiguous = [], []
    for document, block in documented_blocks():
        entries = [key for key in EXAMPLES if key[0] == document and key[1] in block]
        if not entries:
            unlisted.append(f"{document}: {block.splitlines()[0][:100]}")
        elif len(entries) > 1:
            ambiguous.append(f"{document}: {entries}")
    assert unlisted == [], "examples without a test or a reason:\n" + "\n".join(unlisted)
    assert ambiguous == []


def test_every_entry_names_a_block_and_a_test_that_exists():
    blocks = documented_blocks()
    for (document, fragment), runner in EXAMPLES.items():
        assert any(d == document and fragment in b for d, b in blocks), f"{document} has no example with {fragment!r}"
        if not runner.startswith("not run: "):
            assert (ROOT / runner).is_file(), runner
