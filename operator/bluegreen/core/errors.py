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


class ConflictError(BlueGreenError):
    """An object of a name the operator would own exists and is not this app's (a
    hand-made Service, another team's or another tool's object): it is never written
    without the app's consent (the annotation bluegreen.dev/adopt: "true")."""

    def __init__(self, kind: str, name: str, holder: str) -> None:
        super().__init__(
            f"{kind} {name} exists and is not this app's ({holder}); the operator does not "
            f"take it over: delete it, or annotate the app with bluegreen.dev/adopt=true to "
            "adopt it"
        )
        self.kind = kind
        self.name = name
        self.holder = holder
