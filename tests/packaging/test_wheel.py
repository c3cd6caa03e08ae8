"""The built wheel, installed as a user would: in a fresh virtualenv, outside the checkout.

Nothing here may see the checkout: the wheel is built to a temporary folder, installed
non-editable into virtualenvs there, and every command runs with that folder as its working
directory and a clean ``PYTHONPATH``. The full install (``omium[server]``) must find its own
schemas and workflow model and serve ``/ready`` against the running stack; the base install (the
SDK) must import ``omium.Client`` without any of the server's libraries present.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from omium.kernel.settings import OmiumSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHECKOUT = Path(__file__).resolve().parents[2]
SERVER_ONLY_LIBRARIES = (
    "confluent_kafka",
    "fastavro",
    "psycopg",
    "fastapi",
    "eventsourcing",
    "rocksdict",
    "redis",
    "boto3",
    "uvicorn",
    "opensearchpy",
    "regopy",
)
PIP_TIMEOUT_S = 600


def clean_env() -> dict[str, str]:
    """The test's environment minus anything that would let the checkout leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PYTHONNOUSERSITE"] = "1"
    return env


def run(args: list[str | Path], cwd: Path, timeout: float = 120) -> str:
    """Run a command outside the checkout; fail with its output if it fails."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(),
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory that is not the checkout."""
    return tmp_path_factory.mktemp("outside")


@pytest.fixture(scope="module")
def wheel(outside: Path) -> Path:
    """Omium's wheel, built from a copy of the checkout's sources into a temporary folder.

    The copy keeps the build from reusing a stale ``build/`` folder and shows that the sources
    alone (links into ``omium/`` included) make the package.
    """
    source = outside / "source"
    shutil.copytree(
        CHECKOUT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", ".omium", "build", "dist", "node_modules", "__pycache__", "*.egg-info"
        ),
    )
    out = outside / "dist"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source],
        cwd=outside,
        timeout=PIP_TIMEOUT_S,
    )
    (built,) = out.glob("omium-*.whl")
    return built


def venv_with(outside: Path, name: str, requirement: str) -> Path:
    """A fresh virtualenv under ``outside`` with ``requirement`` installed; its bin folder."""
    root = outside / name
    run([sys.executable, "-m", "venv", root], cwd=outside)
    run(
        [
            root / "bin" / "python",
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            requirement,
        ],
        cwd=outside,
        timeout=PIP_TIMEOUT_S,
    )
    return root / "bin"


@pytest.fixture(scope="module")
def server_bin(outside: Path, wheel: Path) -> Path:
    """A virtualenv with ``omium[server]`` from the wheel."""
    return venv_with(outside, "server-venv", f"omium[server] @ {wheel.as_uri()}")


@pytest.fixture(scope="module")
def sdk_bin(outside: Path, wheel: Path) -> Path:
    """A virtualenv with the base install (the SDK) from the wheel."""
    return venv_with(outside, "sdk-venv", str(wheel))


def test_the_wheel_installs_one_namespace(wheel: Path, server_bin: Path, outside: Path) -> None:
    installed = run(
        [
            server_bin / "python",
            "-c",
            textwrap.dedent("""
        import importlib.metadata as md, omium
        files = md.distribution("omium").files
        print(sorted({str(f).split("/")[0] for f in files if not str(f).startswith("..")}))
        print(omium.__file__)
    """),
        ],
        cwd=outside,
    )

    top_levels, location = installed.strip().splitlines()
    assert top_levels == "['../', 'omium', 'omium-0.1.0.dist-info']" or top_levels.startswith(
        "['omium', 'omium-0.1.0.dist-info'"
    ), top_levels
    assert str(CHECKOUT) not in location and str(outside) in location


def test_omium_help_lists_the_server_commands(server_bin: Path, outside: Path) -> None:
    help_text = run([server_bin / "omium", "--help"], cwd=outside)

    for command in ("gateway", "relay", "worker", "project", "replay", "up"):
        assert command in help_text
    assert "need their extras" not in help_text


def test_an_event_round_trips_through_the_packaged_schemas(server_bin: Path, outside: Path) -> None:
    out = run(
        [
            server_bin / "python",
            "-c",
            textwrap.dedent("""
        import uuid
        from omium.kernel import GENESIS_HASH, AvroSerde, default_catalog, new_event, verify_chain
        from omium.kernel.serde import DEFAULT_SCHEMAS_DIR
        event = new_event("ExecutionStarted", tenant_id="acme", aggregate_id=str(uuid.uuid4()),
            aggregate_version=1, prev_hash=GENESIS_HASH,
            payload={"workflow_id": str(uuid.uuid4()), "workflow_version": 1, "input_json": "{}"})
        serde = AvroSerde(default_catalog())
        back = serde.decode(serde.encode(event))
        assert back["hash"] == event["hash"] and back["event_id"] == event["event_id"], back
        assert str(back["payload"]["workflow_id"]) == event["payload"]["workflow_id"], back
        verify_chain([back])
        print(DEFAULT_SCHEMAS_DIR)
    """),
        ],
        cwd=outside,
    )

    assert "site-packages/omium/schemas/avro" in out


def test_a_workflow_yaml_loads_and_validates(server_bin: Path, outside: Path) -> None:
    (outside / "flow.yaml").write_text(
        textwrap.dedent("""
        name: triage
        agents:
          classify: {entrypoint: "my_agents:classify"}
          answer: {entrypoint: "my_agents:answer"}
        steps:
          - {id: classify, agent: classify}
          - {id: answer, agent: answer, needs: [classify]}
    """)
    )

    out = run(
        [
            server_bin / "python",
            "-c",
            textwrap.dedent("""
        from omium.sdk.workflow import load_workflow
        from omium.sdk.workflow._schema import SCHEMA_PATH
        flow = load_workflow("flow.yaml")
        print(flow.name, [s.id for s in flow.steps], SCHEMA_PATH.is_file())
    """),
        ],
        cwd=outside,
    )

    assert out.strip() == "triage ['classify', 'answer'] True"


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def installed_gateway(server_bin: Path, outside: Path, stack: OmiumSettings) -> Iterator[str]:
    """``omium gateway`` of the installed wheel, serving against the running stack."""
    port = free_port()
    log = (outside / "gateway.log").open("w")
    process = subprocess.Popen(
        [str(server_bin / "omium"), "gateway", "--port", str(port)],
        cwd=outside,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_the_installed_gateway_is_ready_against_the_stack(
    installed_gateway: str, outside: Path
) -> None:
    deadline = time.monotonic() + 60
    status, body = None, ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{installed_gateway}/ready", timeout=5)
            status, body = response.status_code, response.text
            if status == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)

    assert status == 200, f"/ready: {status} {body}\n{(outside / 'gateway.log').read_text()}"


def test_the_sdk_install_has_the_client_and_none_of_the_server(
    sdk_bin: Path, outside: Path
) -> None:
    out = run(
        [
            sdk_bin / "python",
            "-c",
            textwrap.dedent(f"""
        import importlib.util, sys
        import omium
        from omium.sdk.workflow import WorkflowDefinition
        client = omium.Client
        present = [m for m in {SERVER_ONLY_LIBRARIES!r} if importlib.util.find_spec(m)]
        print(client.__module__, present)
    """),
        ],
        cwd=outside,
    )

    assert out.strip() == "omium.sdk.client._sync []"
