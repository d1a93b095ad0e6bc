"""Domain errors. Adapters turn API exceptions into these; the kopf edge maps them."""

from __future__ import annotations


class BlueGreenError(Exception):
    """Base of the operator's own errors."""


class TransientError(BlueGreenError):
    """Worth retrying soon: a conflict, a timeout, an API server restarting."""


class RejectedError(BlueGreenError):
    """The API server refused an object the operator built (422/400): retrying the same
    input cannot help; the app is Degraded until its spec changes."""

    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__(f"{kind} {name} was rejected by the API server: {message}")
        self.kind = kind
        self.name = name
        self.api_message = message


class InvalidSpecError(BlueGreenError):
    """The app's spec does not parse into the model (the CRD let it through)."""
