"""Errors of LLM providers, typed so the worker can choose a recovery without parsing messages.

``retryable`` says whether the same call may succeed later (rate limits, timeouts, 5xx);
``retry_after`` is the provider's hint in seconds when it gave one; ``failure_kind`` is the
``FailureDetected`` category the failure belongs to.
"""

from __future__ import annotations

from omium.kernel.errors import OmiumError


class ProviderError(OmiumError):
    """An LLM call failed.

    Attributes:
        provider: The provider's name (``scripted``, ``openai``).
        model: The model asked for, when known.
        retryable: Whether another attempt of the same call may succeed.
        retry_after: Seconds to wait before retrying, when the provider said.
        status_code: The HTTP status, for HTTP providers.
        failure_kind: ``timeout`` for timeouts, ``exception`` otherwise.
    """

    default_retryable = False
    failure_kind = "exception"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        """Build the error; ``retryable`` defaults to the class's ``default_retryable``."""
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.status_code = status_code


class RateLimitError(ProviderError):
    """The provider refused the call for now (HTTP 429); wait ``retry_after`` and retry."""

    default_retryable = True


class ProviderTimeoutError(ProviderError):
    """No answer within the call's timeout."""

    default_retryable = True
    failure_kind = "timeout"


class ProviderUnavailableError(ProviderError):
    """The provider failed on its side (HTTP 5xx) or could not be reached."""

    default_retryable = True


class OverloadedError(ProviderUnavailableError):
    """The provider is overloaded for everyone (Anthropic's HTTP 529): back off and retry."""


class ProviderRequestError(ProviderError):
    """The provider refused the request itself (HTTP 4xx other than 429): retrying won't help."""


class ContextTooLongError(ProviderRequestError):
    """The prompt (plus ``max_tokens``) does not fit the model's context window.

    Retrying the same call fails the same way; a model with a larger window, a shorter input
    or an earlier checkpoint may succeed.
    """


class RefusalError(ProviderError):
    """The model declined to answer (a safety refusal, Anthropic's ``stop_reason: refusal``).

    Attributes:
        text: What the model said before or instead of answering, if anything.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        model: str | None = None,
        text: str = "",
        status_code: int | None = None,
    ) -> None:
        """Build the error (never retryable as it is: the same prompt is refused again)."""
        super().__init__(message, provider=provider, model=model, status_code=status_code)
        self.text = text


class MalformedResponseError(ProviderError):
    """The provider answered with something that is not a valid completion."""

    default_retryable = True


class InjectedFaultError(ProviderError):
    """An ``exception`` fault injected into the scripted provider."""

    default_retryable = True


class NoScriptedResponseError(ProviderError):
    """The scripted provider has no rule for a call and no default response."""
