"""Binaries of the local stack: Kafka jars and OpenSearch from Maven Central, Java, PostgreSQL.

Versions come from ``infra/maven/pom.xml`` (its ``kafka.version`` and ``opensearch.version``
properties), so the pom is the one place to bump them. Downloads land in ``<data_dir>/dist`` and
are skipped once complete.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import threading
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import structlog

from omium.infra.localstack._errors import PrerequisiteError
from omium.infra.localstack._paths import StackPaths
from omium.infra.localstack._proc import run_once

log = structlog.get_logger(__name__)

POM = Path(__file__).resolve().parents[1] / "maven" / "pom.xml"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
# Two Maven runs sharing ~/.m2 at once can corrupt half-downloaded artifacts.
_MAVEN_LOCK = threading.Lock()
_COMPLETE = ".omium-complete"


@functools.cache
def pom_property(name: str) -> str:
    """A ``<properties>`` value of the stack's pom, e.g. ``kafka.version``."""
    root = ET.parse(POM).getroot()
    node = root.find(f"m:properties/m:{name}", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise PrerequisiteError(f"{POM} has no <{name}> property")
    return (node.text or "").strip()


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteError("Maven (mvn) is not installed; run `make bootstrap`")
    return mvn


def kafka_home(paths: StackPaths) -> Path:
    """Folder holding ``libs/`` with the Kafka broker classpath."""
    return paths.dist / f"kafka-{pom_property('kafka.version')}"


def opensearch_home(paths: StackPaths) -> Path:
    """Folder of the unpacked OpenSearch distribution."""
    return paths.dist / f"opensearch-{pom_property('opensearch.version')}"


def ensure_kafka_libs(paths: StackPaths) -> Path:
    """Resolve the Kafka jars with Maven into dist once; later calls return at once.

    Returns:
        The ``libs`` folder to put on the classpath as ``<libs>/*``.
    """
    home = kafka_home(paths)
    if (home / _COMPLETE).exists():
        return home / "libs"
    with _MAVEN_LOCK:
        if (home / _COMPLETE).exists():
            return home / "libs"
        log.info("resolving Kafka jars with Maven", target=str(home))
        # Copy into a scratch folder and rename it, so an interrupted run never looks complete.
        partial = home.with_name(home.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run_once(
            [
                _mvn(),
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={partial / 'libs'}",
            ],
            what="resolving Kafka jars with Maven",
        )
        (partial / _COMPLETE).touch()
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
    return home / "libs"


def _extract(zip_path: Path, dest: Path) -> None:
    # zipfile drops Unix permissions; restore them so bin/opensearch stays executable.
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = archive.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)


def ensure_opensearch(paths: StackPaths) -> Path:
    """Fetch the OpenSearch integ-test zip with Maven and unpack it into dist once.

    Returns:
        The distribution's home folder (with ``bin/opensearch``).
    """
    version = pom_property("opensearch.version")
    home = opensearch_home(paths)
    if (home / _COMPLETE).exists():
        return home
    with _MAVEN_LOCK:
        if (home / _COMPLETE).exists():
            return home
        log.info("fetching OpenSearch with Maven", version=version, target=str(home))
        downloads = paths.dist / "downloads"
        run_once(
            [
                _mvn(),
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy",
                f"-Dartifact=org.opensearch.distribution.integ-test-zip:opensearch:{version}:zip",
                f"-DoutputDirectory={downloads}",
            ],
            what="fetching OpenSearch with Maven",
        )
        zip_path = downloads / f"opensearch-{version}.zip"
        partial = paths.dist / f".opensearch-{version}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _extract(zip_path, partial)
        shutil.rmtree(home, ignore_errors=True)
        (partial / f"opensearch-{version}").rename(home)
        shutil.rmtree(partial, ignore_errors=True)
        # The zip stays in ~/.m2; the copy here would only double the disk use.
        zip_path.unlink(missing_ok=True)
        (home / _COMPLETE).touch()
    return home


# OpenSearch 2.19 still needs the security manager (gone in Java 24) and targets 11/17/21.
_JAVA_SUPPORTED = range(17, 22)


@functools.cache
def java_home() -> Path:
    """JAVA_HOME of a Java runtime both Kafka 3.9 and OpenSearch 2.19 run on (17, else 18-21).

    Looks at ``$JAVA_HOME``, then ``java`` on PATH, then ``/usr/lib/jvm/*``; machines often carry
    several JDKs and the newest may be too new for OpenSearch.

    Raises:
        PrerequisiteError: No suitable Java is installed.
    """
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parents[1])
    candidates.extend(sorted(Path("/usr/lib/jvm").glob("*")))
    found = [(home, _java_major(home)) for home in candidates if (home / "bin" / "java").exists()]
    for wanted in (17, *_JAVA_SUPPORTED):
        for home, major in found:
            if major == wanted:
                return home
    seen = ", ".join(f"{home} ({major or '?'})" for home, major in found) or "none"
    raise PrerequisiteError(f"no Java 17 found (seen: {seen}); run `make bootstrap`")


def _java_major(home: Path) -> int:
    release = home / "release"
    text = release.read_text() if release.exists() else ""
    match = re.search(r'JAVA_VERSION="(?:1\.)?(\d+)', text)
    return int(match.group(1)) if match else 0


def java() -> Path:
    """The ``java`` executable of :func:`java_home`."""
    return java_home() / "bin" / "java"


@functools.cache
def postgres_bindir() -> Path:
    """``/usr/lib/postgresql/<newest major>/bin`` of the Debian PostgreSQL packages.

    Raises:
        PrerequisiteError: PostgreSQL is not installed.
    """
    candidates = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")),
        key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise PrerequisiteError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin); run `make bootstrap`"
        )
    return candidates[-1]
