"""The container image, built without a container engine and run the way a runtime would run it.

``infra/image/build-rootfs.sh`` builds the image's root filesystem and its OCI layout (cached under
``.omium/image`` by a hash of its inputs). The tests read the image's configuration from the OCI
layout and run its entrypoint from that root filesystem: in a private mount namespace (so every
mount disappears with the process, whatever happens to the test), with the root mounted read-only,
``/proc``, ``/dev``, a tmpfs on ``/tmp`` and a data folder on ``/var/lib/omium``, chrooted as the
image's user, on the host's network so the gateway reaches the local stack on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from omium.kernel.settings import OmiumSettings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # A cold build (Debian packages and wheels downloaded) takes a few minutes.
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        not hasattr(os, "geteuid") or os.geteuid() != 0,
        reason="building and entering the image's root filesystem needs root (as on CI)",
    ),
]

CHECKOUT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = CHECKOUT / "infra" / "image" / "build-rootfs.sh"
BUILD_TIMEOUT_S = 1200
READY_TIMEOUT_S = 60
DATA_DIR = "/var/lib/omium"

# Runs as root in a fresh mount namespace: $1 root filesystem, $2 data folder, $3 user, then the
# command to run inside. The namespace, and with it every mount, ends with the last process in it.
ENTER_IMAGE = r"""
set -eu
rootfs=$1 data=$2 user=$3
shift 3
mount --bind "$rootfs" "$rootfs"
mount -o remount,bind,ro "$rootfs"
mount -t proc proc "$rootfs/proc"
mount --rbind /dev "$rootfs/dev"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$rootfs/tmp"
mount --bind "$data" "$rootfs/var/lib/omium"
exec chroot --userspec="$user" "$rootfs" "$@"
"""


@dataclass(frozen=True)
class Image:
    """A built image: its root filesystem and its OCI configuration (``config`` of the blob)."""

    folder: Path
    rootfs: Path
    config: dict[str, Any]
    labels: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config["Env"])


def read_oci_config(layout: Path) -> dict[str, Any]:
    """The image configuration of the only image in an OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]

    def blob(digest: str) -> dict[str, Any]:
        algorithm, value = digest.split(":", 1)
        document: dict[str, Any] = json.loads((layout / "blobs" / algorithm / value).read_text())
        return document

    return blob(blob(entry["digest"])["config"]["digest"])


@pytest.fixture(scope="module")
def image() -> Image:
    """The image built by the script (fast when its inputs did not change since the last build)."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        cwd=CHECKOUT,
        text=True,
        capture_output=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"build-rootfs.sh exited {done.returncode}:\n{done.stdout}\n{done.stderr[-20000:]}"
    )
    folder = Path(done.stdout.strip().splitlines()[-1])
    print(f"image {folder.name} ready in {time.monotonic() - started:.0f}s")
    oci = read_oci_config(folder / "oci")
    return Image(
        folder=folder,
        rootfs=folder / "rootfs",
        config=oci["config"],
        labels=oci["config"].get("Labels") or {},
    )


@pytest.fixture
def data_dir(tmp_path: Path, image: Image) -> Path:
    """An empty data folder owned by the image's user, like a volume."""
    folder = tmp_path / "data"
    folder.mkdir()
    uid, gid = (int(part) for part in image.config["User"].split(":"))
    os.chown(folder, uid, gid)
    return folder


def container_env(image: Image) -> dict[str, str]:
    """The image's environment plus the test's own ``OMIUM_*`` settings (``docker run -e``)."""
    env = image.env
    for key, value in os.environ.items():
        if key.startswith("OMIUM_") and key not in env:
            env[key] = value
    return env


def container_command(
    image: Image,
    data_dir: Path,
    args: Sequence[str] | None = None,
    entrypoint: Sequence[str] | None = None,
) -> list[str]:
    """Run ``entrypoint + args`` (the image's own by default) as the image would be run."""
    entrypoint = list(image.config["Entrypoint"] if entrypoint is None else entrypoint)
    args = list(image.config["Cmd"] if args is None else args)
    env = [f"{key}={value}" for key, value in container_env(image).items()]
    inside = ["/usr/bin/env", "-i", "-C", image.config["WorkingDir"], *env, *entrypoint, *args]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        ENTER_IMAGE,
        "enter-image",
        str(image.rootfs),
        str(data_dir),
        image.config["User"],
        *inside,
    ]


def run_in_image(
    image: Image,
    data_dir: Path,
    args: Sequence[str] | None = None,
    entrypoint: Sequence[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        container_command(image, data_dir, args, entrypoint),
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        stdin=subprocess.DEVNULL,
    )


def mounts_under(path: Path) -> list[str]:
    """Mount points of this (the host's) mount namespace at or below ``path``."""
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_image_config_runs_omium_as_a_non_root_user(image: Image) -> None:
    config = image.config

    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["omium"]
    assert config["Cmd"] == ["gateway"]
    assert "8000/tcp" in config["ExposedPorts"]
    assert config["WorkingDir"] == DATA_DIR
    env = image.env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["OMIUM_STACK__DATA_DIR"] == DATA_DIR
    assert env["PATH"].startswith("/opt/omium/bin:")
    assert image.labels["org.opencontainers.image.title"] == "omium"
    assert image.labels["org.opencontainers.image.version"]
    # Everything but the data folder belongs to root: the image's user cannot change its code.
    for path in ("opt/omium", "opt/omium/bin/omium", "usr/lib/python3.11", "etc"):
        stat = (image.rootfs / path).stat()
        assert stat.st_uid == 0 and not stat.st_mode & 0o022, path
    assert (image.rootfs / DATA_DIR.lstrip("/")).stat().st_uid == 10001


def test_omium_help_works_inside_the_image(image: Image, data_dir: Path) -> None:
    done = run_in_image(image, data_dir, args=["--help"])

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    for command in ("gateway", "relay", "worker", "project", "replay"):
        assert command in done.stdout
    assert "need their extras" not in done.stdout
    assert mounts_under(image.rootfs) == []


def test_the_image_user_writes_only_tmp_and_the_data_folder(image: Image, data_dir: Path) -> None:
    bytecode = (
        "import importlib.util as u, os, omium.gateway as g;"
        "print('bytecode', os.path.exists(u.cache_from_source(g.__file__)))"
    )
    script = f"""
        id -u; id -g
        for path in / /opt/omium /opt/omium/lib /etc /var/lib /usr/lib/python3.11; do
            touch "$path/.probe" 2>/dev/null && echo "wrote $path"
        done
        touch /tmp/.probe && echo "wrote /tmp"
        touch /var/lib/omium/.probe && echo "wrote /var/lib/omium"
        python3 -c "{bytecode}"
    """
    done = run_in_image(image, data_dir, args=["-ec", script], entrypoint=["/bin/sh"])

    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert done.stdout.splitlines() == [
        "10001",
        "10001",
        "wrote /tmp",
        "wrote /var/lib/omium",
        "bytecode True",
    ], done.stdout
    assert (data_dir / ".probe").is_file()
    assert mounts_under(image.rootfs) == []


@pytest.fixture
def gateway_in_image(
    image: Image, data_dir: Path, tmp_path: Path, stack: OmiumSettings
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """The image's default command (``omium gateway``) on a free port, against the stack."""
    port = free_port()
    log_path = tmp_path / "gateway.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            container_command(image, data_dir, args=[*image.config["Cmd"], "--port", str(port)]),
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}", process, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_the_gateway_in_the_image_is_ready_against_the_stack(
    gateway_in_image: tuple[str, subprocess.Popen[bytes], Path], image: Image
) -> None:
    url, process, log_path = gateway_in_image
    deadline = time.monotonic() + READY_TIMEOUT_S
    status, body = None, ""
    while time.monotonic() < deadline and process.poll() is None:
        try:
            response = httpx.get(f"{url}/ready", timeout=5)
            status, body = response.status_code, response.text
            if status == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)

    assert status == 200, f"/ready: {status} {body}\n{log_path.read_text()}"
    # unshare, sh, chroot and env exec in turn: the process is the gateway itself.
    uids = next(
        line.split()[1:]
        for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert uids == ["10001"] * 4, uids
    process.terminate()
    # uvicorn shuts down cleanly, then re-raises the signal it stopped on.
    assert process.wait(timeout=30) in (0, -signal.SIGTERM), log_path.read_text()
    assert "Application shutdown complete" in log_path.read_text()
    assert mounts_under(image.rootfs) == []
