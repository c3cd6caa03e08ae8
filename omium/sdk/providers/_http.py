"""What the HTTP providers share: reading JSON bodies and ``Retry-After`` headers."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from omium.sdk.providers.errors import MalformedResponseError

MAX_ERROR_TEXT = 300
"""Most characters of a server's error text quoted in an error."""


def json_object(response: httpx.Response, provider: str, model: str) -> dict[str, Any]:
    """The response's body as a JSON object.

    Raises:
        MalformedResponseError: The body is not JSON, or not an object.
    """
    try:
        payload = response.json()
    except ValueError:
        raise MalformedResponseError(
            f"HTTP {response.status_code} body is not JSON: {response.text[:MAX_ERROR_TEXT]!r}",
            provider=provider,
            model=model,
            status_code=response.status_code,
        ) from None
    if not isinstance(payload, dict):
        raise MalformedResponseError(
            "the response is not a JSON object", provider=provider, model=model
        )
    return payload


def retry_after_s(headers: httpx.Headers) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an
    HTTP date); None when it said nothing usable.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)
