"""The ``grounded`` post-condition: every cited claim must be supported by the step's sources.

Citation format (documented in ``docs/workflows.md``):

- **Text**: a sentence cites with ``[source:ID]`` markers (``[source:a, b]`` cites two). The
  claim is the sentence the marker ends, without its markers; a marker alone after a full stop
  belongs to the sentence before it.
- **Structured**: the output (or ``field``) is a list of claims, or a mapping with a ``claims``
  or ``facts`` list; each claim is ``{"text": ..., "source": ID}`` or
  ``{"text": ..., "sources": [ID, ...]}``, optionally with a ``"quote"`` copied from the source.

A claim is supported when (1) every source it cites exists, (2) every number in it appears in
a cited source, and (3) its quote appears verbatim in a cited source (case and spacing aside),
or, without a quote, at least ``min_overlap`` of its content words appear there. The check is
lexical and deterministic: it catches invented sources, changed figures and claims about
things the sources never mention, not subtle paraphrases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_MARKER = re.compile(r"\[source:\s*([^\]]*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"[^\W\d_]{3,}")
_STOPWORD_TEXT = (
    "the and for with that this from was were are has have had its their they them into "
    "than which who whom but not all also over per our been more most such can could would "
    "should will may might about after before between during each other some any only very "
    "when where while what there here these those then both being does did"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_MIN_WORDS_TO_CITE = 4


@dataclass(frozen=True)
class Claim:
    """A statement and the sources it cites."""

    text: str
    sources: tuple[str, ...]
    quote: str | None = None


@dataclass(frozen=True)
class ClaimProblem:
    """Why a claim is not supported."""

    claim: str
    sources: tuple[str, ...]
    problems: tuple[str, ...]


def extract_claims(output: Any) -> tuple[list[Claim], list[str]]:
    """Find the cited claims of an output, and (for text) the sentences that cite nothing.

    Returns:
        The claims, and the uncited sentences of four words or more that are not headings.

    Raises:
        ValueError: A structured claim is not a mapping with text and sources.
    """
    if isinstance(output, str):
        return _claims_from_text(output)
    items = output
    if isinstance(output, Mapping):
        items = output.get("claims", output.get("facts"))
    if isinstance(items, Sequence) and not isinstance(items, str | bytes):
        return [_structured_claim(item, index) for index, item in enumerate(items)], []
    raise ValueError("expected text with [source:ID] markers or a list of claims")


def check_claims(
    claims: Iterable[Claim], sources: Mapping[str, str], *, min_overlap: float
) -> list[ClaimProblem]:
    """The claims that their cited sources do not support, each with its problems."""
    problems = []
    for claim in claims:
        found = _claim_problems(claim, sources, min_overlap)
        if found:
            problems.append(ClaimProblem(claim.text, claim.sources, tuple(found)))
    return problems


# Extraction ---------------------------------------------------------------------------------


def _claims_from_text(text: str) -> tuple[list[Claim], list[str]]:
    claims: list[Claim] = []
    uncited: list[str] = []
    for sentence in _sentences(text):
        ids = _marker_ids(sentence)
        statement = _SPACE_BEFORE_PUNCTUATION.sub(
            r"\1", " ".join(_MARKER.sub("", sentence).split())
        )
        if ids and statement:
            claims.append(Claim(statement, ids))
        elif statement and _needs_citation(statement):
            uncited.append(statement)
    return claims, uncited


def _sentences(text: str) -> list[str]:
    merged: list[str] = []
    for sentence in (part.strip() for part in _SENTENCE_END.split(text)):
        if not sentence:
            continue
        if merged and not _MARKER.sub("", sentence).strip():
            # "Fact. [source:a]": a lone marker cites the sentence before it.
            merged[-1] = f"{merged[-1]} {sentence}"
        else:
            merged.append(sentence)
    return merged


def _marker_ids(sentence: str) -> tuple[str, ...]:
    ids: list[str] = []
    for group in _MARKER.findall(sentence):
        ids.extend(part.strip() for part in group.split(",") if part.strip())
    return tuple(ids)


def _needs_citation(sentence: str) -> bool:
    return not sentence.startswith("#") and len(sentence.split()) >= _MIN_WORDS_TO_CITE


def _structured_claim(item: Any, index: int) -> Claim:
    if not isinstance(item, Mapping) or not isinstance(item.get("text"), str):
        raise ValueError(f"claim #{index} needs a 'text'")
    raw = item.get("sources", item.get("source"))
    ids = [raw] if isinstance(raw, str) else raw
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"claim #{index} needs a 'source' or a list of 'sources'")
    quote = item.get("quote")
    return Claim(item["text"], tuple(ids), quote if isinstance(quote, str) else None)


# Support ------------------------------------------------------------------------------------


def _claim_problems(claim: Claim, sources: Mapping[str, str], min_overlap: float) -> list[str]:
    unknown = [sid for sid in claim.sources if sid not in sources]
    problems = [f"cites unknown source {sid!r}" for sid in unknown]
    cited = " ".join(sources[sid] for sid in claim.sources if sid in sources)
    if not cited:
        return problems
    missing_numbers = sorted(_numbers(claim.text) - _numbers(cited))
    if missing_numbers:
        problems.append(f"{', '.join(missing_numbers)} in no cited source")
    if claim.quote is not None:
        if _normalise(claim.quote) not in _normalise(cited):
            problems.append("quote not found in the cited sources")
        return problems
    words = _content_words(claim.text)
    if words:
        covered = words & _content_words(cited)
        share = len(covered) / len(words)
        if share < min_overlap:
            absent = ", ".join(sorted(words - covered)[:8])
            problems.append(f"only {share:.0%} of its words are in the cited sources ({absent})")
    return problems


def _numbers(text: str) -> set[str]:
    return {match.replace(",", "").rstrip(".") for match in _NUMBER.findall(text)}


def _content_words(text: str) -> set[str]:
    words = set()
    for word in _WORD.findall(text.casefold()):
        if word not in _STOPWORDS:
            # A light plural strip, so "deaths" in a claim matches "death" in a source.
            words.add(word[:-1] if len(word) > 4 and word.endswith("s") else word)
    return words


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())
