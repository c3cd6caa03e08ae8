"""The Helm chart ``helm/omium``, checked offline: no cluster, no network after the first build.

``helm/test-chart.sh`` builds helm and the strict manifest validator once (cached under
``.omium/tools``), lints the chart, renders it with several value sets through the validator and
checks that wrong values and wrong manifests are refused. The tests here run it, then read the
rendered manifests themselves: one Deployment per enabled process, each running a command the CLI
knows, settings that Omium's own settings class accepts, and the HA extras (HPA, PDB,
ServiceMonitor). The exec probe script the chart ships is run against real processes and sockets.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from omium.kernel.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CHECKOUT = Path(__file__).resolve().parents[2]
HELM_DIR = CHECKOUT / "helm"
CHART = HELM_DIR / "omium"
SCRIPT = HELM_DIR / "test-chart.sh"
PROBE = CHART / "files" / "probe.py"
TOOLS_BIN = Path(os.environ.get("OMIUM_TOOLS_DIR", CHECKOUT / ".omium" / "tools")) / "bin"
RELEASE = "omium-ci"
# A fresh machine builds helm (~3.5 min) and the validator (~1 min) first.
SCRIPT_TIMEOUT_S = 1100

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def chart_script() -> subprocess.CompletedProcess[str]:
    """Run ``helm/test-chart.sh`` once for the module (it also builds the tools the tests use)."""
    if shutil.which("go") is None and not (TOOLS_BIN / "helm").exists():
        pytest.fail("the chart tests need Go once, to build helm and the manifest validator")
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture(scope="module")
def helm(chart_script: subprocess.CompletedProcess[str]) -> Path:
    """The helm binary the script built (or found cached)."""
    binary = TOOLS_BIN / "helm"
    assert binary.exists(), chart_script.stderr[-4000:]
    return binary


def render(helm: Path, *values: Path, extra: list[str] | None = None) -> list[Manifest]:
    """``helm template`` with these values files, parsed into a list of documents."""
    args = [str(helm), "template", RELEASE, str(CHART), "--namespace", "omium"]
    for path in values:
        args += ["-f", str(path)]
    done = subprocess.run(
        [*args, *(extra or [])], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    """The documents of one kind, by name."""
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def enabled_components(values: dict[str, Any]) -> set[str]:
    """The component names a values file enables, the way the chart names its Deployments."""
    components = {name for name in ("gateway", "relay") if values[name]["enabled"]}
    components |= {f"worker-{n}" for n, p in values["processors"].items() if p["enabled"]}
    components |= {f"projection-{n}" for n, p in values["projections"].items() if p["enabled"]}
    return components


def default_values() -> dict[str, Any]:
    """The chart's values.yaml."""
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def container(deployment: Manifest) -> Manifest:
    """The one container of a Deployment's pods."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    only: Manifest = containers[0]
    return only


def test_chart_script_passes(chart_script: subprocess.CompletedProcess[str]) -> None:
    """Lint, render, validate and the negative cases all pass."""
    assert chart_script.returncode == 0, chart_script.stdout + chart_script.stderr[-6000:]
    assert ", 0 failed" in chart_script.stdout
    assert "helm lint refuses testdata/invalid-values/unknown-key.yaml" in chart_script.stderr


def test_one_deployment_per_enabled_process(helm: Path) -> None:
    """Deployments match the enabled process kinds, and each runs its ``omium`` command."""
    docs = render(helm)
    deployments = by_kind(docs, "Deployment")
    expected = enabled_components(default_values())
    assert {name.removeprefix(f"{RELEASE}-") for name in deployments} == expected
    assert "projection-timestream" not in expected  # off by default
    args = {n.removeprefix(f"{RELEASE}-"): container(d)["args"] for n, d in deployments.items()}
    assert args["gateway"] == ["gateway"]
    assert args["relay"] == ["relay"]
    assert args["worker-consensus"] == ["worker", "consensus"]
    assert args["worker-execute"][:2] == ["worker", "execute"]
    assert args["projection-opensearch"] == ["project", "opensearch"]
    assert set(by_kind(docs, "Service")) == {f"{RELEASE}-gateway"}
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    assert not by_kind(docs, "PodDisruptionBudget")
    assert not by_kind(docs, "ServiceMonitor")


def test_commands_are_known_to_the_cli() -> None:
    """Every processor and projection the chart can run is one the CLI accepts."""
    from omium.cli._worker_execute import EXECUTION_WORKERS
    from omium.projections import FACTORIES
    from omium.streams import PROCESSORS

    values = default_values()
    assert set(values["processors"]) == set(PROCESSORS) | set(EXECUTION_WORKERS)
    assert set(values["projections"]) == set(FACTORIES)


def test_disabling_a_process_removes_its_deployment(helm: Path) -> None:
    """The process list is data: ``enabled: false`` leaves a kind out."""
    docs = render(
        helm,
        extra=["--set", "processors.policy.enabled=false", "--set", "relay.enabled=false"],
    )
    names = set(by_kind(docs, "Deployment"))
    assert f"{RELEASE}-worker-policy" not in names
    assert f"{RELEASE}-relay" not in names
    assert len(names) == len(enabled_components(default_values())) - 2


def test_checkpoint_retention_runs_as_a_cronjob_the_cli_knows(helm: Path) -> None:
    """``omium checkpoints prune`` on a schedule, one pass at a time, with the processes' settings
    and security context; ``checkpointRetention.enabled=false`` leaves it out."""
    from typer.testing import CliRunner

    from omium.cli import app

    docs = render(helm, extra=["--set", "secrets.values.postgresPassword=pw"])
    [job] = by_kind(docs, "CronJob").values()
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [prune] = pod["containers"]
    assert prune["args"] == ["checkpoints", "prune", "--grace", "1h"]
    gateway = container(by_kind(docs, "Deployment")[f"{RELEASE}-gateway"])
    assert prune["envFrom"] == gateway["envFrom"]
    names = {e["name"] for e in prune["env"]}
    assert "OMIUM_POSTGRES__PASSWORD" in names and "OMIUM_HEALTH__PORT" not in names
    assert prune["securityContext"] == gateway["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    help_text = CliRunner().invoke(app, [*prune["args"][:2], "--help"])
    assert help_text.exit_code == 0 and "--grace" in help_text.output

    off = render(helm, extra=["--set", "checkpointRetention.enabled=false"])
    assert not by_kind(off, "CronJob")


def test_ha_values_add_autoscaling_budgets_and_monitoring(helm: Path) -> None:
    """values-ha.yaml: HPAs for the gateway and execution worker, a PDB each, a ServiceMonitor."""
    docs = render(helm, CHART / "values-ha.yaml")
    deployments = by_kind(docs, "Deployment")
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {f"{RELEASE}-gateway", f"{RELEASE}-worker-execute"}
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert "replicas" not in deployments[name]["spec"]  # the HPA owns the count
    pdbs = by_kind(docs, "PodDisruptionBudget")
    assert set(pdbs) == set(deployments)
    assert all(p["apiVersion"] == "policy/v1" for p in pdbs.values())
    assert set(by_kind(docs, "Service")) == {f"{RELEASE}-gateway"}
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    gateway = deployments[f"{RELEASE}-gateway"]
    assert gateway["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert deployments[f"{RELEASE}-relay"]["spec"]["replicas"] == 2


def test_probes_security_and_storage(helm: Path) -> None:
    """HTTP probes on the gateway, exec probes elsewhere; non-root, read-only, emptyDirs."""
    docs = render(helm)
    for name, deployment in by_kind(docs, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])
        assert "memory" in c["resources"]["limits"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert "emptyDir" in volumes[mounts["/var/lib/omium"]]
        if name.endswith("-gateway"):
            assert c["livenessProbe"]["httpGet"]["path"] == "/health"
            assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
        else:
            command = c["livenessProbe"]["exec"]["command"]
            assert command[1:3] == ["/etc/omium/probe/probe.py", "live"]
            assert command[3:] == c["args"][: len(command) - 3]
            assert c["readinessProbe"]["exec"]["command"][2] == "ready"
    configmap = by_kind(docs, "ConfigMap")[f"{RELEASE}-config"]
    # The stream processors keep RocksDB state under <data dir>/streams: the emptyDir above.
    assert configmap["data"]["OMIUM_STACK__DATA_DIR"] == "/var/lib/omium"


def test_http_probe_mode_uses_the_health_port(helm: Path) -> None:
    """``probes.http``: every process is probed over HTTP on ``healthPort``."""
    docs = render(helm, HELM_DIR / "testdata" / "values" / "http-probes.yaml")
    consensus = container(by_kind(docs, "Deployment")[f"{RELEASE}-worker-consensus"])
    assert consensus["ports"] == [{"name": "health", "containerPort": 8081, "protocol": "TCP"}]
    assert consensus["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "health"}
    assert f"{RELEASE}-probe" not in by_kind(docs, "ConfigMap")


def pod_environment(docs: list[Manifest], deployment: str) -> dict[str, str]:
    """The environment Kubernetes would give a Deployment's container (envFrom, then env)."""
    configmaps = by_kind(docs, "ConfigMap")
    secrets = by_kind(docs, "Secret")
    c = container(by_kind(docs, "Deployment")[deployment])
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]]["data"])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        data = secrets[ref["name"]].get("data") or {}
        if ref["key"] in data:
            env[var["name"]] = base64.b64decode(data[ref["key"]]).decode()
        else:
            assert ref.get("optional"), f"{var['name']}: key {ref['key']} missing"
    return env


def test_rendered_environment_is_valid_omium_settings(
    helm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ConfigMap and Secret, as a pod would see them, load into Omium's settings as meant."""
    docs = render(
        helm,
        HELM_DIR / "testdata" / "values" / "created-secret.yaml",
        extra=[
            *("--set", "kafka.bootstrapServers=b-1.msk:9096\\,b-2.msk:9096"),
            *("--set", "kafka.securityProtocol=SASL_SSL"),
            *("--set", "kafka.saslMechanism=SCRAM-SHA-512"),
            *("--set", "kafka.saslUsername=omium"),
            *("--set", "secrets.values.kafkaSaslPassword=test-only-kafka-password"),
        ],
    )
    for name in list(os.environ):
        if name.startswith("OMIUM_"):
            monkeypatch.delenv(name)
    for name, value in pod_environment(docs, f"{RELEASE}-gateway").items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.environment == "production"
    assert settings.kafka.bootstrap_servers == "b-1.msk:9096,b-2.msk:9096"
    # MSK's SCRAM listener: the password from the Secret, the rest from the ConfigMap.
    assert settings.kafka.client_config() == {
        "bootstrap.servers": "b-1.msk:9096,b-2.msk:9096",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "omium",
        "sasl.password": "test-only-kafka-password",
        "ssl.endpoint.identification.algorithm": "https",
    }
    assert settings.kafka.replication_factor == 3
    assert (settings.postgres.host, settings.postgres.port) == ("postgresql", 5432)
    assert settings.postgres.password.get_secret_value() == "test-only-password"
    # The Secret's Redis URL (it carries a token) wins over the ConfigMap's.
    assert settings.redis.url == "rediss://:test-only-token@redis.example:6379/0"
    assert settings.aws.endpoint_url is None  # real AWS, not the local emulator
    assert settings.gateway.host == "0.0.0.0"
    assert settings.gateway.port == 8000
    jwt = settings.gateway.auth.jwt_secret
    assert jwt is not None and jwt.get_secret_value().startswith("test-only")
    assert str(settings.stack.data_dir) == "/var/lib/omium"


def test_existing_secret_is_referenced_not_created(helm: Path) -> None:
    """``secrets.existingSecret``: no Secret rendered; only the password is required."""
    docs = render(helm, HELM_DIR / "testdata" / "values" / "existing-secret.yaml")
    assert not by_kind(docs, "Secret")
    env = container(by_kind(docs, "Deployment")[f"{RELEASE}-gateway"])["env"]
    refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in env if "valueFrom" in v}
    assert refs["OMIUM_POSTGRES__PASSWORD"] == {
        "name": "omium-credentials",
        "key": "postgres-password",
    }
    assert all(r["optional"] for n, r in refs.items() if n != "OMIUM_POSTGRES__PASSWORD")
    configmap = by_kind(docs, "ConfigMap")[f"{RELEASE}-config"]["data"]
    assert configmap["OMIUM_AWS__ENDPOINT_URL"] == "https://minio.storage.svc:9000"
    assert "OMIUM_AWS" not in configmap


def test_default_values_hold_no_secret() -> None:
    """Every secret value in values.yaml is empty."""
    assert all(value == "" for value in default_values()["secrets"]["values"].values())


# The exec probe script ---------------------------------------------------------------------


def run_probe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run files/probe.py as the kubelet would (its own process)."""
    return subprocess.run(
        [sys.executable, str(PROBE), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


FAKE_PROCESSOR = f"probe-test-{uuid.uuid4().hex}"  # no real process on the host has it


@pytest.fixture
def fake_omium(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line looks like ``omium worker <FAKE_PROCESSOR>``."""
    script = tmp_path / "omium"
    script.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    script.chmod(0o755)
    process = subprocess.Popen([str(script), "worker", FAKE_PROCESSOR])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_probe_live_finds_the_running_process(fake_omium: subprocess.Popen[bytes]) -> None:
    """``live worker <name>`` passes while that process runs, and fails for another name."""
    assert run_probe("live", "worker", FAKE_PROCESSOR).returncode == 0
    missing = run_probe("live", "worker", f"{FAKE_PROCESSOR}-other")
    assert missing.returncode == 1
    assert "no omium process" in missing.stderr
    fake_omium.kill()
    fake_omium.wait()
    assert run_probe("live", "worker", FAKE_PROCESSOR).returncode == 1


def test_probe_ready_checks_each_dependency() -> None:
    """``ready kafka postgres``: any Kafka server listening is enough; a closed port fails."""
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        up = f"127.0.0.1:{listening.getsockname()[1]}"
        down_port = closed.getsockname()[1]
        env = {
            "OMIUM_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{down_port},{up}",
            "OMIUM_POSTGRES__HOST": "127.0.0.1",
            "OMIUM_POSTGRES__PORT": str(down_port),
            "OMIUM_REDIS__URL": f"redis://{up}/0",
        }
        assert run_probe("ready", "kafka", "redis", env=env).returncode == 0
        failed = run_probe("ready", "kafka", "postgres", env=env)
        assert failed.returncode == 1
        assert failed.stderr.startswith("postgres unreachable")
        assert run_probe("ready", "nosuch", env=env).returncode == 2
