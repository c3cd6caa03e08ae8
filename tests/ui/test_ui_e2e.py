"""The web UI end to end: Chromium (Debian's package) driven by Playwright against the real
gateway serving ``ui/dist``, with the relay, the stream processors, the orchestrator, a worker
and the read models behind it on the local stack.

Covers: sign-in as each role (and a bad credential); a run started from the UI and watched
live; a failed step with its recovery, and consensus (the demo's research report); approving a
pending approval and the run going on; a diff of two checkpoints; the audit log exported as CSV
and JSON; a viewer seeing no actions and a direct action refused; another tenant's run id is
"not found"; axe-core on every screen; screenshots of each screen into ``docs/ui/``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from playwright.sync_api import Page, expect

from omium.cli import _demo as demo
from omium.kernel.kafka import Area, DeadLetter, topic_name
from omium.sdk.workflow import WorkflowDefinition, load_workflow
from tests.sdk.client.fixtures import LiveGateway
from tests.ui.browser import UI, eventually

pytestmark = [pytest.mark.integration]

ECHO = {"entrypoint": "tests.cli.agents:echo"}


def chain(name: str, steps: tuple[str, ...], **per_step: dict[str, Any]) -> dict[str, Any]:
    """A workflow definition: ``steps`` in a chain of echo agents, checkpointed around each."""
    spec = {
        "name": name,
        "agents": {"echo": ECHO},
        "defaults": {"checkpoint": {"before": True, "after": True}},
        "steps": [
            {
                "id": step,
                "agent": "echo",
                **({"needs": [steps[i - 1]]} if i else {}),
                **per_step.get(step, {}),
            }
            for i, step in enumerate(steps)
        ],
    }
    return WorkflowDefinition.model_validate(spec).to_definition()


@dataclass
class Tenant:
    """One tenant's view of the API (setting the scene and checking what the UI did)."""

    gateway: LiveGateway
    tenant: str

    def call(self, method: str, path: str, role: str = "operator", **kwargs: Any) -> Any:
        """A request as ``role``; the decoded JSON of a 2xx answer."""
        token = self.gateway.token(role, tenant=self.tenant, subject=f"setup-{role}")
        response = httpx.request(
            method,
            f"{self.gateway.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            **kwargs,
        )
        assert response.is_success, (method, path, response.status_code, response.text)
        return response.json()

    def register(self, definition: dict[str, Any]) -> str:
        """Register a workflow; its id."""
        body = {"name": definition["name"], "definition": definition}
        return str(self.call("POST", "/workflows", "developer", json=body)["workflow_id"])

    def start(self, workflow_id: str, run_input: dict[str, Any] | None = None) -> str:
        """Start a run of version 1; its id."""
        body = {"workflow_id": workflow_id, "workflow_version": 1, "input": run_input or {}}
        return str(self.call("POST", "/executions", "developer", json=body)["execution_id"])

    def state(self, run_id: str) -> str:
        """The run's state (write side)."""
        return str(self.call("GET", f"/executions/{run_id}", "viewer")["state"])

    def wait_for(self, run_id: str, *states: str, timeout_s: float = 60.0) -> str:
        """Wait until the run is in one of ``states``."""

        def reached() -> str | None:
            state = self.state(run_id)
            return state if state in states else None

        return str(eventually(reached, timeout_s=timeout_s))


@dataclass
class World:
    """Tenant A's workflows and runs, started once for the module (they run meanwhile)."""

    a: Tenant
    b: Tenant
    live_workflow: str
    approval_workflow: str
    demo_run: str
    approval_run: str


@pytest.fixture(scope="module")
def world(ui: UI) -> Iterator[World]:
    gateway = ui.gateway
    suffix = uuid.uuid4().hex[:8]
    a = Tenant(gateway, f"ui-a-{suffix}")
    b = Tenant(gateway, f"ui-b-{suffix}")
    for name, module, mode in demo.policy_modules():
        a.call("POST", "/policies", json={"name": name, "module": module, "mode": mode})
    demo_workflow = a.register(load_workflow(demo.WORKFLOW_FILE).to_definition())
    live = a.register(chain("live-report", ("plan", "write", "review")))
    approval = a.register(
        chain(
            "approved-refund",
            ("plan", "act", "report"),
            act={"approval": {"prompt": "Refund the customer?", "timeout_s": 600}},
        )
    )
    demo_run = a.start(demo_workflow, {"requested_by": "ui e2e"})
    approval_run = a.start(approval, {"ticket": 7})
    yield World(a, b, live, approval, demo_run, approval_run)


def check_page(ui: UI, page: Page, name: str) -> None:
    """axe-core finds no serious violation; then the screenshot for docs/ui/."""
    serious = ui.check_accessibility(page, name)
    ui.screenshot(page, name)
    assert serious == [], json.dumps(serious, indent=1)


def nav(page: Page, name: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


# ------------------------------------------------------------------------------- sign-in


def test_sign_in_as_each_role_shows_what_the_role_may_do(ui: UI, world: World) -> None:
    page = ui.open()
    page.goto(ui.url("runs"))
    check_page(ui, page, "sign-in")
    # A bad credential is refused with the reason, and nothing is stored.
    page.get_by_label("Access token or API key").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not signed in")
    expect(alert).to_contain_text("not valid")
    assert page.evaluate("() => sessionStorage.length") == 0
    page.context.close()

    for role in ("viewer", "developer", "operator", "admin"):
        page = ui.sign_in(role, world.a.tenant, path=f"workflows/{world.live_workflow}")
        expect(page.get_by_test_id("whoami")).to_contain_text(world.a.tenant)
        expect(page.get_by_role("heading", name="live-report")).to_be_visible()
        start = page.get_by_role("button", name="Start run")
        if role == "viewer":
            expect(start).to_have_count(0)
        else:
            expect(start).to_be_visible()
        # The credential is in this tab's session storage, never in the URL or a cookie.
        assert "token" not in page.url and page.context.cookies() == []
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert page.evaluate("() => sessionStorage.length") == 0
        page.context.close()


# ------------------------------------------------------------------- a run, live


def test_a_run_started_in_the_ui_goes_live_to_completion(ui: UI, world: World) -> None:
    page = ui.sign_in("developer", world.a.tenant, path="workflows")
    page.get_by_role("link", name="live-report").click()
    # The definition as YAML beside its DAG, or as the JSON the gateway stores.
    yaml_view = page.get_by_test_id("definition-yaml")
    expect(yaml_view).to_contain_text("name: live-report")
    expect(yaml_view).to_contain_text("- id: write")
    expect(yaml_view).to_contain_text("  - plan")
    check_page(ui, page, "workflow")
    page.get_by_role("button", name="JSON", exact=True).click()
    expect(page.get_by_test_id("definition-json")).to_contain_text('"name": "live-report"')
    page.get_by_label("Input (JSON object)").fill('{"sleep_s": 0.6')
    expect(page.get_by_text("Not valid JSON")).to_be_visible()
    expect(page.get_by_role("button", name="Start run")).to_be_disabled()
    page.get_by_label("Input (JSON object)").fill('{"sleep_s": 0.6, "note": "from the UI"}')
    page.get_by_role("button", name="Start run").click()

    page.wait_for_url("**/ui/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", name=run_id)).to_be_visible()
    # Events arrive over the stream while the run is still going ...
    expect(page.locator('[data-testid="live-status"][data-state="live"]').first).to_be_visible()
    expect(
        page.locator('[data-testid="timeline-event"][data-event-type="StepStarted"]').first
    ).to_be_visible()
    running = page.get_by_test_id("run-state").inner_text()
    assert running in ("pending", "running"), running
    # ... until its end, without a reload.
    expect(page.get_by_test_id("run-state")).to_have_text("completed", timeout=45_000)
    expect(page.locator('[data-event-type="ExecutionCompleted"]')).to_have_count(1)
    expect(page.locator('[data-testid="live-status"][data-state="ended"]').first).to_be_visible()
    assert world.a.state(run_id) == "completed"
    # Each event once, although the stream and the read model both delivered it.
    types = page.locator('[data-testid="timeline-event"]').evaluate_all(
        "els => els.map(e => e.dataset.eventType)"
    )
    assert types.count("StepCompleted") == 3, types
    assert types.count("ExecutionStarted") == 1, types
    expect(page.locator('[data-testid="dag-node"]')).to_have_count(3)
    check_page(ui, page, "run")

    # Two checkpoints compared: the state grew by the steps between them.
    rows = page.get_by_test_id("checkpoint-row")
    expect(rows).to_have_count(6)
    rows.nth(0).get_by_role("checkbox").check()
    rows.nth(5).get_by_role("checkbox").check()
    diff = page.get_by_test_id("checkpoint-diff")
    expect(diff.get_by_test_id("diff-row").first).to_be_visible()
    expect(diff).to_contain_text("seen")
    rows.nth(5).get_by_role("button", name="View state").click()
    expect(page.get_by_test_id("checkpoint-state")).to_contain_text('"review"')
    ui.screenshot(page, "run-checkpoint-diff")

    # The runs list shows it, filtered by workflow and state.
    nav(page, "Runs")
    page.get_by_label("Workflow", exact=True).select_option(label="live-report")
    page.get_by_label("State", exact=True).select_option("completed")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    assert "status=completed" in page.url
    check_page(ui, page, "runs")


def test_the_runs_list_is_live_a_run_started_elsewhere_appears_without_reload(
    ui: UI, world: World
) -> None:
    """The list follows the tenant WebSocket (the token in ``Sec-WebSocket-Protocol``, never in
    the URL); while it is live the 3 s polling is off, so the new row comes from the push."""
    sockets: list[str] = []
    page = ui.open()
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(ui.url("runs"))
    token = ui.gateway.token("viewer", tenant=world.a.tenant, subject="live-list")
    page.get_by_label("Access token or API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("runs-live")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("run-row").first).to_be_visible()
    assert sockets and all("/api/v1/events/ws" in url and token not in url for url in sockets)
    page.evaluate("() => { window.__sameDocument = true }")  # a reload would drop it

    run_id = world.a.start(world.live_workflow, {"topic": "live list"})
    expect(page.locator(f'a[href="/ui/runs/{run_id}"]')).to_be_visible(timeout=15_000)
    assert page.evaluate("() => window.__sameDocument === true")
    expect(page.get_by_test_id("runs-live")).to_have_attribute("data-state", "live")


# ----------------------------------------------------------- failure and recovery


def test_the_demo_run_shows_the_failure_its_recovery_and_the_consensus(
    ui: UI, world: World
) -> None:
    world.a.wait_for(world.demo_run, "completed", "failed", "halted", timeout_s=90)
    page = ui.sign_in("viewer", world.a.tenant, path=f"runs/{world.demo_run}")
    expect(page.get_by_test_id("run-state")).to_have_text("completed")
    failure = page.get_by_test_id("failure-row").first
    expect(failure).to_contain_text("hallucination")
    expect(failure).to_contain_text("rollback")
    expect(page.locator('[data-event-type="ExecutionRolledBack"]')).to_have_count(1)
    round_ = page.get_by_test_id("consensus-round").first
    expect(round_).to_contain_text("reached")
    expect(page.get_by_role("heading", name="Policy evaluations")).to_be_visible()
    check_page(ui, page, "run-recovery")
    # The run's history is verified on the server (consensus rounds included); the answer
    # is shown whatever it is (see test_operations_and_integrity_screens for an intact one).
    page.get_by_role("button", name="Verify hash chain").click()
    expect(page.get_by_test_id("integrity-result")).to_contain_text(re.compile("intact|broken"))

    nav(page, "Failures")
    expect(page.get_by_test_id("failure-group").first).to_be_visible(timeout=30_000)
    check_page(ui, page, "failures")


# ----------------------------------------------------------------- approvals


def test_an_operator_approves_and_the_run_goes_on(ui: UI, world: World) -> None:
    world.a.wait_for(world.approval_run, "waiting_for_approval")
    viewer = ui.sign_in("viewer", world.a.tenant, path=f"runs/{world.approval_run}")
    expect(viewer.get_by_test_id("pending-approval")).to_contain_text("Refund the customer?")
    # A viewer sees no action at all ...
    for name in ("Approve", "Reject", "Cancel run", "Halt", "Roll back…"):
        expect(viewer.get_by_role("button", name=name, exact=True)).to_have_count(0)
    # ... and a direct request with the viewer's credential is refused by the gateway.
    refused = viewer.evaluate(
        """async (run) => {
            const stored = JSON.parse(sessionStorage.getItem('omium.credential'))
            const response = await fetch(`/api/v1/executions/${run}/cancel`, {
                method: 'POST',
                headers: {
                    Authorization: `Bearer ${stored.value}`,
                    'Content-Type': 'application/json',
                },
                body: '{}',
            })
            return {status: response.status, body: await response.json()}
        }""",
        world.approval_run,
    )
    assert refused["status"] == 403
    assert refused["body"]["type"].endswith(":forbidden")
    assert refused["body"]["required_role"] == "developer"
    viewer.context.close()

    page = ui.sign_in("operator", world.a.tenant, subject="olga", path=f"runs/{world.approval_run}")
    approval = page.get_by_test_id("pending-approval")
    check_page(ui, page, "run-approval")
    approval.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Comment (optional)").fill("ok to refund")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("pending-approval")).to_have_count(0)
    expect(page.get_by_test_id("run-state")).to_have_text("completed", timeout=45_000)
    expect(page.locator('[data-event-type="HumanApprovalGranted"]')).to_contain_text("olga")

    # Resume from a checkpoint: a fork starts as a new run (the approval is asked again).
    rows = page.get_by_test_id("checkpoint-row")
    rows.filter(has_text="act").filter(has_text="before").get_by_role(
        "button", name="Resume from here"
    ).click()
    page.get_by_role("dialog").get_by_role("button", name="Start the fork").click()
    page.wait_for_url(re.compile(r".*/ui/runs/(?!" + world.approval_run + ").*"))
    fork = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("heading", name=fork)).to_be_visible()
    assert world.a.wait_for(fork, "waiting_for_approval") == "waiting_for_approval"

    nav(page, "Policies")
    row = page.get_by_test_id("approval-row").filter(has_text="granted").first
    expect(row).to_contain_text("olga")
    expect(page.get_by_test_id("policy-row")).to_have_count(2)
    check_page(ui, page, "policies")


def test_an_escalated_approval_is_labelled_in_the_run_and_the_history(ui: UI, world: World) -> None:
    """``on_timeout: escalate``: bob does not answer within 1 s, carol (admins) takes over."""
    escalating = world.a.register(
        chain(
            f"escalated-refund-{uuid.uuid4().hex[:6]}",
            ("plan", "act"),
            act={
                "approval": {
                    "prompt": "Refund twice?",
                    "timeout_s": 1,
                    "on_timeout": "escalate",
                    "approvers": ["bob"],
                    "escalation": {
                        "approvers": ["carol"],
                        "approver_role": "admin",
                        "timeout_s": 600,
                        "on_timeout": "reject",
                    },
                }
            },
        )
    )
    run = world.a.start(escalating, {"ticket": 8})

    def escalated() -> bool | None:
        approvals = world.a.call("GET", f"/executions/{run}", "viewer")["approvals"]
        return True if approvals and approvals[0].get("escalated_at") else None

    eventually(escalated, timeout_s=60)
    page = ui.sign_in("viewer", world.a.tenant, path=f"runs/{run}")
    pending = page.get_by_test_id("pending-approval")
    expect(pending).to_contain_text("Refund twice?")
    expect(pending.get_by_test_id("approval-escalated")).to_contain_text(
        "escalated", timeout=30_000
    )
    expect(pending).to_contain_text("carol (role admin)")
    event = page.locator('[data-event-type="HumanApprovalEscalated"]')
    label = "approval for act escalated to carol (role admin)"
    expect(event).to_contain_text(label, timeout=30_000)
    expect(event).to_contain_text("reject at")
    check_page(ui, page, "run-approval-escalated")

    nav(page, "Policies")
    row = page.get_by_test_id("approval-row").filter(has_text="escalated").first
    expect(row).to_contain_text("to carol", timeout=30_000)
    expect(row).to_contain_text("act")


# ------------------------------------------------------------------- compliance


def test_the_audit_log_exports_as_csv_and_json(ui: UI, world: World) -> None:
    # The module's tests register workflows of their own in tenant A (how many depends on which
    # ran first): the API's answer for the same filter is what the screen and files must hold.
    found = world.a.call("GET", "/audit", "viewer", params={"command": "workflows.register"})
    registered = len(found["items"])
    assert registered >= 3
    page = ui.sign_in("viewer", world.a.tenant, path="audit")
    expect(page.get_by_test_id("audit-row").first).to_be_visible(timeout=30_000)
    page.get_by_label("What (command)").fill("workflows.register")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_test_id("audit-row")).to_have_count(registered)
    check_page(ui, page, "audit")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["command"] for r in rows] == ["workflows.register"] * registered
    assert {r["result"] for r in rows} == {"accepted"}
    assert rows[0]["actor"] == "setup-developer"

    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert exported["filters"]["command"] == "workflows.register"
    assert len(exported["records"]) == registered


def test_operations_and_integrity_screens(ui: UI, world: World) -> None:
    page = ui.sign_in("operator", world.a.tenant, path="operations")
    expect(page.get_by_test_id("lag-row")).to_have_count(4)
    # Every part of the pipeline reports a heartbeat, from its own loop.
    health = page.get_by_test_id("health-row")
    for name in ("relay", "orchestrator", "consensus", "execute", "postgres", "opensearch"):
        expect(health.filter(has_text=name).first).to_have_attribute(
            "data-status", "ok", timeout=30_000
        )
    # Budgets: the demo workflow's runs against its policies.budget.
    budget = page.get_by_test_id("budget-row").filter(has_text="research-report")
    expect(budget).to_contain_text("20,000 tokens")
    expect(page.get_by_test_id("budget-tenant")).to_contain_text("with a budget")
    chart = "Throughput (runs per bucket): chart of started, completed, failed"
    expect(page.get_by_role("img", name=chart)).to_be_visible()
    check_page(ui, page, "operations")

    nav(page, "History integrity")
    page.get_by_label("Run id").fill(world.approval_run)
    page.get_by_role("button", name="Verify", exact=True).click()
    expect(page.get_by_test_id("integrity-result")).to_contain_text("intact")
    check_page(ui, page, "integrity")

    nav(page, "Workflows")
    expect(page.get_by_role("link", name="research-report")).to_be_visible()
    check_page(ui, page, "workflows")

    viewer = ui.sign_in("viewer", world.a.tenant, path="operations")
    expect(viewer.get_by_text("Projection lag and process health are shown to")).to_be_visible()
    expect(viewer.get_by_test_id("lag-row")).to_have_count(0)
    expect(viewer.get_by_test_id("health-row")).to_have_count(0)
    expect(viewer.get_by_test_id("budget-row").first).to_be_visible()


# ------------------------------------------------------------------------------ DLQ


def dead_letter(gateway: LiveGateway, tenant: str, note: str) -> None:
    """A message of ``tenant`` on the metrics topic that a consumer could not decode."""
    kafka = gateway.settings.kafka
    letter = DeadLetter(
        reason=f"{note}: cannot decode",
        error_type="CorruptMessageError",
        source_topic=topic_name(kafka, Area.METRICS),
        source_partition=0,
        source_offset=42,
        key=b"ui-e2e",
        value=json.dumps({"note": note}).encode(),
        consumer_group=f"{kafka.topic_prefix}.projection.example",
        original_headers=(("tenant_id", tenant.encode()),),
    )
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    producer.produce(
        topic_name(kafka, Area.DLQ),
        key=letter.key,
        value=letter.value,
        headers=list(letter.headers()),
    )
    assert producer.flush(15) == 0


def test_dead_letters_are_listed_and_an_operator_redrives_one(ui: UI, world: World) -> None:
    note = f"ui e2e {uuid.uuid4().hex[:6]}"
    dead_letter(ui.gateway, world.a.tenant, note)

    viewer = ui.sign_in("viewer", world.a.tenant, path="runs")
    nav_links = viewer.get_by_role("navigation", name="Main")
    expect(nav_links.get_by_role("link", name="Dead letters")).to_have_count(0)
    viewer.context.close()

    developer = ui.sign_in("developer", world.a.tenant, path="dlq")
    row = developer.get_by_test_id("dlq-row").filter(has_text=note)
    expect(row).to_be_visible(timeout=30_000)
    row.get_by_role("button", name=re.compile("Open dead letter")).click()
    expect(developer.get_by_test_id("dlq-payload")).to_contain_text(note)
    expect(developer.get_by_role("button", name="Re-drive…")).to_have_count(0)
    developer.context.close()

    page = ui.sign_in("operator", world.a.tenant, subject="olga", path="dlq")
    row = page.get_by_test_id("dlq-row").filter(has_text=note)
    expect(row).to_contain_text("metrics[0] @ 42")
    expect(row).to_contain_text("pending")
    row.get_by_role("button", name=re.compile("Open dead letter")).click()
    expect(page.get_by_test_id("dlq-reason")).to_have_text(f"{note}: cannot decode")
    check_page(ui, page, "dlq")
    page.get_by_role("button", name="Re-drive…").click()
    page.get_by_role("button", name="Re-drive now").click()
    result = page.get_by_test_id("redrive-result")
    expect(result).to_contain_text(
        f"Put back on {topic_name(ui.gateway.settings.kafka, Area.METRICS)}"
    )
    expect(page.get_by_test_id("dlq-row").filter(has_text=note).first).to_contain_text("re-driven")

    # Another tenant does not see it.
    other = ui.sign_in("operator", world.b.tenant, path="dlq")
    expect(other.get_by_text("No dead letters.")).to_be_visible()
    expect(other.get_by_test_id("dlq-row").filter(has_text=note)).to_have_count(0)


# ---------------------------------------------------------------------- tenancy


def test_another_tenants_run_is_not_found(ui: UI, world: World) -> None:
    page = ui.sign_in("admin", world.b.tenant, path=f"runs/{world.demo_run}")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not found")
    expect(alert).to_contain_text("Nothing with this id exists in your tenant")
    expect(page.get_by_test_id("run-state")).to_have_count(0)
    page.get_by_role("link", name="Back to runs").click()
    expect(page.get_by_text("No runs match these filters.")).to_be_visible()
