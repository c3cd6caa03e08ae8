"""Avro schemas of Omium events and their wire format.

The schemas live in one folder (``schemas/avro``): ``envelope.avsc`` lists the fields every event
carries, and ``<area>/<EventType>.v<N>.avsc`` holds version N of one event type's payload.
:class:`SchemaCatalog` loads them and composes each event version's full writer schema: the
envelope fields with ``payload`` typed as that version's payload record, named
``io.omium.events.<EventType>``.

:class:`AvroSerde` writes Avro single-object encoding: the marker ``C3 01``, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then the
schemaless Avro body. A reader finds the writer schema by fingerprint among every version in the
catalog, without a registry, and reads with the latest version of the event type.

Decoded events hold Python values for Avro logical types: ``uuid.UUID`` for ``uuid`` fields and
timezone-aware UTC ``datetime`` for ``timestamp-micros`` fields. Encoding accepts those, or
canonical UUID strings and integer microseconds.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Self, cast

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form

from omium.kernel import _serde
from omium.kernel.errors import ConfigurationError, OmiumError
from omium.kernel.resources import packaged_path

NAMESPACE = _serde.NAMESPACE
"""Avro namespace of every Omium event schema."""

ENVELOPE_FILE = "envelope.avsc"
"""File in the schemas folder that lists the envelope fields."""

DEFAULT_SCHEMAS_DIR = packaged_path("schemas", "avro")
"""The schemas shipped with Omium (also the default of ``OmiumSettings.schemas_dir``)."""

MARKER = b"\xc3\x01"
"""First two bytes of every Avro single-object encoded message."""

HEADER_SIZE = len(MARKER) + 8

# seal(): a hash is 64 hex characters, an Avro string of length 64 (zigzag varint ``80 01``).
_STRING_64 = b"\x80\x01"
_EMPTY_STRING = b"\x00"
_HASH_PLACEHOLDER = secrets.token_hex(32)
_PLACEHOLDER_FIELD = _STRING_64 + _HASH_PLACEHOLDER.encode()
"""Marker plus the 8-byte schema fingerprint."""

_FINGERPRINT_ALGORITHM = "CRC-64-AVRO"
_PAYLOAD_FIELD = "payload"
_VERSION_FILE = re.compile(r"^(?P<event_type>[A-Z][A-Za-z0-9]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


# --------------------------------------------------------------------------------------- errors


class SerdeError(OmiumError, ValueError):
    """An event could not be encoded, or a message could not be decoded."""


class UnknownSchemaError(SerdeError):
    """No schema in the catalog matches a fingerprint, or an event type and version.

    Attributes:
        fingerprint: The 8 fingerprint bytes from a message header, when decoding.
        event_type: The event type looked up by name, if any.
        version: The schema version looked up, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        fingerprint: bytes | None = None,
        event_type: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.event_type = event_type
        self.version = version


class CorruptMessageError(SerdeError):
    """A message is not a readable Avro single-object message (marker, header or body).

    Attributes:
        problem: What is wrong with it.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(f"corrupt message: {problem}")
        self.problem = problem


class SchemaValidationError(SerdeError):
    """An event does not match its writer schema, so it was not encoded.

    Attributes:
        event_type: The event type being encoded (``None`` if the event names none).
        version: The schema version being encoded (``None`` if not known yet).
        field: Dotted path of the offending field, e.g. ``payload.tokens_in``.
        problem: What is wrong with the field.
    """

    def __init__(
        self, problem: str, *, event_type: str | None, version: int | None, field: str
    ) -> None:
        what = f"{event_type or 'event'}" + (f" v{version}" if version is not None else "")
        super().__init__(f"cannot encode {what}: field {field!r} {problem}")
        self.event_type = event_type
        self.version = version
        self.field = field
        self.problem = problem


class SchemaFileError(ConfigurationError):
    """A file in the schemas folder is missing, misnamed or not a valid Omium event schema.

    Attributes:
        path: The offending file or folder.
    """

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path


# --------------------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class EventSchema:
    """One version of one event type: its composed writer schema and what identifies it.

    Attributes:
        event_type: Name of the event type, e.g. ``StepCompleted``.
        version: Schema version, 1 for the first.
        area: Topic suffix the event type is produced to.
        schema: The parsed (fastavro) schema: envelope fields with the typed payload.
        fingerprint: The 8-byte CRC-64-AVRO fingerprint that heads its messages.
        path: The payload schema file it was composed from.
    """

    event_type: str
    version: int
    area: str
    schema: dict[str, Any] = field(repr=False, compare=False)
    fingerprint: bytes
    path: Path
    # Record full name -> dotted path of that record in the event, to name fields in errors.
    record_paths: Mapping[str, str] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """``<EventType> v<N>``, for messages."""
        return f"{self.event_type} v{self.version}"

    @cached_property
    def fits(self) -> _serde.Check:
        """The compiled check of a whole event (unknown keys refused); see ``compile_check``."""
        return _serde.compile_check(self.schema)

    @cached_property
    def fits_ignoring_unknown_keys(self) -> _serde.Check:
        """The compiled check that lets keys the schema does not know through (hashing)."""
        return _serde.compile_check(self.schema, allow_unknown_keys=True)

    @cached_property
    def has_maps(self) -> bool:
        """Whether the schema has an Avro map (only then does canonical form reorder)."""
        return _serde.has_maps(self.schema)


class SchemaCatalog:
    """Every version of every event type's schema, loaded from a schemas folder.

    Build it with :meth:`from_directory`; it does not change afterwards.
    """

    def __init__(self, envelope_fields: Sequence[str], schemas: Iterable[EventSchema]) -> None:
        """Index composed schemas; :meth:`from_directory` is the usual way to build one."""
        self._envelope_fields = tuple(envelope_fields)
        self._by_key: dict[tuple[str, int], EventSchema] = {}
        self._by_fingerprint: dict[bytes, EventSchema] = {}
        self._versions: dict[str, list[int]] = {}
        for schema in schemas:
            self._add(schema)
        self._check_versions_contiguous()

    @classmethod
    def from_directory(cls, path: str | Path) -> Self:
        """Load ``envelope.avsc`` and every ``<area>/<EventType>.v<N>.avsc`` under ``path``.

        Args:
            path: The schemas folder, usually ``OmiumSettings.schemas_dir``.

        Returns:
            The catalog of every event version found.

        Raises:
            SchemaFileError: A file is missing, misnamed or invalid, or the files break the
                layout rules (record names, namespace, versions 1..N, one area per event type).
        """
        root = Path(path)
        envelope = _load_json(root / ENVELOPE_FILE)
        _check_record(envelope, root / ENVELOPE_FILE, "Envelope")
        files = sorted(file for file in root.rglob("*.avsc") if file != root / ENVELOPE_FILE)
        schemas = [_load_version(file, root, envelope) for file in files]
        if not schemas:
            raise SchemaFileError(root, "no event schemas (<area>/<EventType>.v<N>.avsc) found")
        return cls([f["name"] for f in envelope["fields"]], schemas)

    @property
    def envelope_fields(self) -> tuple[str, ...]:
        """Names of the envelope fields, in schema order."""
        return self._envelope_fields

    def event_types(self) -> list[str]:
        """All event type names, sorted."""
        return sorted(self._versions)

    def areas(self) -> list[str]:
        """All areas (topic suffixes) that have at least one event type, sorted."""
        return sorted({schema.area for schema in self._by_key.values()})

    def area_of(self, event_type: str) -> str:
        """The area of an event type: it is produced to topic ``<prefix>.<area>``.

        Raises:
            UnknownSchemaError: The event type is not in the catalog.
        """
        return self.get(event_type).area

    def versions(self, event_type: str) -> list[int]:
        """Schema versions of an event type, oldest first (always ``1..latest``).

        Raises:
            UnknownSchemaError: The event type is not in the catalog.
        """
        return list(self._require(event_type))

    def latest_version(self, event_type: str) -> int:
        """The newest schema version of an event type; decoding reads with it.

        Raises:
            UnknownSchemaError: The event type is not in the catalog.
        """
        return self._require(event_type)[-1]

    def get(self, event_type: str, version: int | None = None) -> EventSchema:
        """One event version (the latest when ``version`` is ``None``).

        Raises:
            UnknownSchemaError: The event type or version is not in the catalog.
        """
        versions = self._require(event_type)
        found = self._by_key.get((event_type, versions[-1] if version is None else version))
        if found is None:
            known = ", ".join(str(v) for v in versions)
            raise UnknownSchemaError(
                f"event type {event_type!r} has no schema version {version!r} (known: {known})",
                event_type=event_type,
                version=version,
            )
        return found

    def schema(self, event_type: str, version: int | None = None) -> dict[str, Any]:
        """The parsed (fastavro) writer schema of an event version, envelope included.

        Raises:
            UnknownSchemaError: The event type or version is not in the catalog.
        """
        return self.get(event_type, version).schema

    def fingerprint_of(self, event_type: str, version: int | None = None) -> bytes:
        """The 8-byte fingerprint heading messages of an event version (latest by default).

        Raises:
            UnknownSchemaError: The event type or version is not in the catalog.
        """
        return self.get(event_type, version).fingerprint

    def resolve(self, fingerprint: bytes) -> EventSchema:
        """The event version whose writer schema has this fingerprint.

        Raises:
            UnknownSchemaError: No schema in the catalog has it; the message names it in hex.
        """
        found = self._by_fingerprint.get(bytes(fingerprint))
        if found is None:
            raise UnknownSchemaError(
                f"no known event schema has fingerprint {bytes(fingerprint).hex()}",
                fingerprint=bytes(fingerprint),
            )
        return found

    def _require(self, event_type: str) -> list[int]:
        versions = self._versions.get(event_type)
        if versions is None:
            raise UnknownSchemaError(f"unknown event type {event_type!r}", event_type=event_type)
        return versions

    def _add(self, schema: EventSchema) -> None:
        known = self._versions.get(schema.event_type)
        if known and (area := self.get(schema.event_type, known[0]).area) != schema.area:
            raise SchemaFileError(schema.path, f"{schema.event_type} is also in area {area!r}")
        clash = self._by_fingerprint.get(schema.fingerprint)
        if clash is not None:
            # Same canonical form: readers could not tell the two apart.
            raise SchemaFileError(schema.path, f"same canonical schema as {clash.path}")
        self._by_key[(schema.event_type, schema.version)] = schema
        self._by_fingerprint[schema.fingerprint] = schema
        self._versions.setdefault(schema.event_type, []).append(schema.version)

    def _check_versions_contiguous(self) -> None:
        for event_type, versions in self._versions.items():
            versions.sort()
            if versions != list(range(1, len(versions) + 1)):
                path = self._by_key[(event_type, versions[-1])].path
                raise SchemaFileError(path, f"{event_type} has versions {versions}, not 1..N")


@cache
def default_catalog() -> SchemaCatalog:
    """The catalog of the schemas shipped with Omium, loaded once per process.

    Entry points that honour ``OmiumSettings.schemas_dir`` build their own catalog with
    :meth:`SchemaCatalog.from_directory` and pass it inward instead.
    """
    return SchemaCatalog.from_directory(DEFAULT_SCHEMAS_DIR)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SchemaFileError(path, "file not found") from None
    except (OSError, ValueError) as exc:
        raise SchemaFileError(path, f"not readable JSON: {exc}") from exc


def _check_record(schema: Any, path: Path, name: str) -> None:
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SchemaFileError(path, "must hold one Avro record schema")
    if schema.get("name") != name or schema.get("namespace") != NAMESPACE:
        found = f"{schema.get('namespace')}.{schema.get('name')}"
        raise SchemaFileError(path, f"record must be {NAMESPACE}.{name}, found {found}")
    fields = schema.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        raise SchemaFileError(path, "record has no valid 'fields' list")
    if name == "Envelope" and _PAYLOAD_FIELD not in [f.get("name") for f in fields]:
        raise SchemaFileError(path, f"envelope has no {_PAYLOAD_FIELD!r} field")


def _load_version(path: Path, root: Path, envelope: dict[str, Any]) -> EventSchema:
    match = _VERSION_FILE.match(path.name)
    if match is None or len(path.relative_to(root).parts) != 2:
        raise SchemaFileError(path, "event schemas must be named <area>/<EventType>.v<N>.avsc")
    event_type = match["event_type"]
    payload = _load_json(path)
    _check_record(payload, path, f"{event_type}Payload")
    try:
        # A record schema parses to a dict.
        schema = cast(
            dict[str, Any], fastavro.parse_schema(_compose(envelope, payload, event_type))
        )
        canonical_form = to_parsing_canonical_form(schema)
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise SchemaFileError(path, f"invalid Avro schema: {exc}") from exc
    return EventSchema(
        event_type=event_type,
        version=int(match["version"]),
        area=path.parent.name,
        schema=schema,
        fingerprint=bytes.fromhex(fingerprint(canonical_form, _FINGERPRINT_ALGORITHM)),
        path=path,
        record_paths=_serde.record_paths(schema),
    )


def _compose(envelope: dict[str, Any], payload: dict[str, Any], event_type: str) -> dict[str, Any]:
    fields = [
        {**f, "type": copy.deepcopy(payload)} if f["name"] == _PAYLOAD_FIELD else f
        for f in copy.deepcopy(envelope["fields"])
    ]
    doc = payload.get("doc", "")
    return {
        "type": "record",
        "name": event_type,
        "namespace": NAMESPACE,
        "doc": doc,
        "fields": fields,
    }


# --------------------------------------------------------------------------------------- serde


class AvroSerde:
    """Encodes events as Avro single-object messages and decodes them with the latest schema.

    Args:
        catalog: The schemas to write and read with.
    """

    def __init__(self, catalog: SchemaCatalog) -> None:
        """Wrap a catalog; the serde keeps no other state and is safe to share."""
        self._catalog = catalog

    @property
    def catalog(self) -> SchemaCatalog:
        """The schemas this serde writes and reads with."""
        return self._catalog

    def area_of(self, event_type: str) -> str:
        """The area (topic suffix) of an event type; see :meth:`SchemaCatalog.area_of`."""
        return self._catalog.area_of(event_type)

    def fingerprint_of(self, event_type: str, version: int | None = None) -> bytes:
        """The 8-byte fingerprint heading messages of an event version (latest by default)."""
        return self._catalog.fingerprint_of(event_type, version)

    def validate(self, event: Mapping[str, Any]) -> EventSchema:
        """Check an event against the writer schema its envelope names, without encoding it.

        ``event_type`` and ``schema_version`` pick the writer schema and both are required:
        nothing is filled in. Fields that have a schema default may be left out. Keys the schema
        does not know, UUID strings not in canonical lowercase form and naive datetimes are
        refused.

        Returns:
            The event version the event would be written as.

        Raises:
            SchemaValidationError: Naming the event type, version and offending field.
        """
        writer = self._writer_of_event(event)
        if writer.fits(event):  # the compiled check: most events end here
            return writer
        _raise_problem(writer, _serde.shape_problem(event, writer.schema))
        _raise_problem(writer, _serde.fastavro_problem(event, writer.schema, writer.record_paths))
        return writer

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """Validate an event and encode it as an Avro single-object message.

        Args:
            event: A complete event: envelope fields and ``payload``, as built by
                :func:`omium.kernel.events.new_event`.

        Returns:
            ``C3 01``, the writer schema's fingerprint, then the schemaless Avro body.

        Raises:
            SchemaValidationError: The event does not match its writer schema.
        """
        writer = self.validate(event)
        return MARKER + writer.fingerprint + _write(event, writer)

    def seal(self, event: dict[str, Any]) -> bytes:
        """Validate an event, fill in its ``hash`` and encode it, checking and writing it once.

        What :func:`omium.kernel.events.new_event` then :meth:`encode` do, for a writer that
        builds many events (the relay): the event's ``prev_hash`` must be set; its ``hash`` is
        set here to SHA-256 of ``prev_hash`` and the canonical body. When the schema has no Avro
        map, the canonical body is the event's own body with an empty hash, so the event is
        written once, with a random placeholder where the hash goes, and both the hashed body and
        the message are cut from those bytes.

        Returns:
            The message, as :meth:`encode` would write it.

        Raises:
            SchemaValidationError: The event does not match its writer schema.
        """
        writer = self.validate(event)
        prev_hash = event.get("prev_hash")
        prefix = prev_hash.encode("utf-8") if isinstance(prev_hash, str) else b""
        if writer.has_maps:
            event["hash"] = ""
            event["hash"] = hashlib.sha256(prefix + self.canonical_body(event)).hexdigest()
            return MARKER + writer.fingerprint + _write(event, writer)
        event["hash"] = _HASH_PLACEHOLDER
        written = _write(event, writer)
        # The placeholder's field: its length (64, zigzag varint 80 01), then its bytes. The
        # fields before it (ids, names, numbers, prev_hash) cannot hold a random value that
        # never leaves this process, so the first match is the field.
        at = written.find(_PLACEHOLDER_FIELD)
        if at < 0:  # pragma: no cover - only if fastavro stopped writing strings as Avro does
            raise SerdeError(f"{writer.label}: the hash placeholder was not written")
        before, after = written[:at], written[at + len(_PLACEHOLDER_FIELD) :]
        digest = hashlib.sha256(prefix + before + _EMPTY_STRING + after).hexdigest()
        event["hash"] = digest
        return MARKER + writer.fingerprint + before + _STRING_64 + digest.encode() + after

    def canonical_body(self, event: Mapping[str, Any]) -> bytes:
        """The canonical Avro body of an event: what the hash chain covers.

        The schemaless body under the writer schema the event names, with every map's entries
        sorted by key. Keys the writer schema does not know are ignored, so an event decoded with
        a newer reader schema gives the same bytes as when it was written.

        Raises:
            SchemaValidationError: The event names no known schema or does not fit it.
        """
        writer = self._writer_of_event(event)
        if not writer.fits_ignoring_unknown_keys(event):
            problem = _serde.shape_problem(event, writer.schema, allow_unknown_keys=True)
            _raise_problem(writer, problem)
        if not writer.has_maps:  # records are written in schema order whatever the dict's
            return _write(event, writer)
        named = writer.schema.get("__named_schemas", {})
        return _write(_serde.canonical(event, writer.schema, named), writer)

    def writer_of(self, data: bytes) -> EventSchema:
        """The event version a message was written with, read from its header alone.

        Raises:
            CorruptMessageError: The header is missing or malformed.
            UnknownSchemaError: The fingerprint matches no schema in the catalog.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise CorruptMessageError(f"message value is {type(data).__name__}, not bytes")
        if len(data) == 0:
            raise CorruptMessageError("message is empty")
        if bytes(data[:2]) != MARKER:
            found = bytes(data[:2]).hex(" ")
            raise CorruptMessageError(f"does not start with marker c3 01 (starts with {found})")
        if len(data) < HEADER_SIZE:
            raise CorruptMessageError(f"header truncated: {len(data)} of {HEADER_SIZE} bytes")
        return self._catalog.resolve(bytes(data[2:HEADER_SIZE]))

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode a message, reading it with the latest schema of its event type.

        The result has the latest version's shape: fields added after the writer's version hold
        their defaults. ``schema_version`` keeps the writer's version, as written, so the event
        still names the schema its hash was computed under and
        :func:`omium.kernel.events.verify_chain` can check it.

        Raises:
            CorruptMessageError: Bad marker, truncated header or body, bytes left over, or a body
                that does not decode under the writer schema.
            UnknownSchemaError: The header's fingerprint matches no schema in the catalog.
        """
        writer = self.writer_of(data)
        reader = self._catalog.get(writer.event_type)
        body = io.BytesIO(bytes(data[HEADER_SIZE:]))
        event = _read(body, writer, reader)
        left = len(data) - HEADER_SIZE - body.tell()
        if left:
            raise CorruptMessageError(f"{left} bytes left over after the {writer.label} body")
        found = (event.get("event_type"), event.get("schema_version"))
        if found != (writer.event_type, writer.version):
            raise CorruptMessageError(
                f"header names {writer.label} but the body says {found[0]} v{found[1]}"
            )
        return event

    def _writer_of_event(self, event: Mapping[str, Any]) -> EventSchema:
        if not isinstance(event, Mapping):
            problem = f"must be a mapping, got {type(event).__name__}"
            raise SchemaValidationError(problem, event_type=None, version=None, field="<event>")
        event_type, version = event.get("event_type"), event.get("schema_version")
        named = event_type if isinstance(event_type, str) else None
        if named is None:
            problem = "is missing" if event_type is None else "must be a string"
            raise SchemaValidationError(problem, event_type=None, version=None, field="event_type")
        if not isinstance(version, int) or isinstance(version, bool):
            problem = "is missing" if version is None else "must be an int"
            raise SchemaValidationError(
                problem, event_type=named, version=None, field="schema_version"
            )
        try:
            return self._catalog.get(named, version)
        except UnknownSchemaError as exc:
            field_name = "event_type" if exc.version is None else "schema_version"
            raise SchemaValidationError(
                f"names no known schema ({exc})", event_type=named, version=None, field=field_name
            ) from None


def _raise_problem(writer: EventSchema, problem: _serde.Problem | None) -> None:
    if problem is not None:
        field_path, message = problem
        raise SchemaValidationError(
            message, event_type=writer.event_type, version=writer.version, field=field_path
        )


def _write(event: Mapping[str, Any], writer: EventSchema) -> bytes:
    buffer = io.BytesIO()
    try:
        fastavro.schemaless_writer(buffer, writer.schema, event)
    except Exception as exc:  # validation ran first; this backstops checks only the writer makes
        raise SchemaValidationError(
            f"could not be written ({type(exc).__name__}: {exc})",
            event_type=writer.event_type,
            version=writer.version,
            field="<event>",
        ) from exc
    return buffer.getvalue()


def _read(body: io.BytesIO, writer: EventSchema, reader: EventSchema) -> dict[str, Any]:
    try:
        # No reader schema when it is the writer's: fastavro then skips schema resolution.
        event = fastavro.schemaless_reader(
            body, writer.schema, None if reader is writer else reader.schema
        )
    except SchemaResolutionError as exc:
        # A catalog bug rather than a bad message; the schema evolution tests exist to catch it.
        raise SerdeError(f"{reader.label} cannot read {writer.label}: {exc}") from exc
    except Exception as exc:  # the body is untrusted bytes: any failure means it is corrupt
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise CorruptMessageError(f"body is not a valid {writer.label} ({detail})") from exc
    if not isinstance(event, dict):
        raise CorruptMessageError(f"body is not a valid {writer.label} record")
    return event
