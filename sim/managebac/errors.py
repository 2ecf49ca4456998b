"""Errors the simulator answers with, each carrying ManageBac+'s status and body shape."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SimError(Exception):
    """Base of every error that becomes an HTTP answer."""

    status_code: int = 500

    def body(self) -> dict[str, Any]:
        """Return the JSON body ManageBac+ sends for this error."""
        return {"error": str(self)}


class AccessDeniedError(SimError):
    """Raised when the API token is missing or wrong (401 `{"error": "Access Denied"}`)."""

    status_code = 401

    def __init__(self) -> None:
        super().__init__("Access Denied")


class NotFoundError(SimError):
    """Raised when a record id is unknown (404 `{"error": "Couldn't find ..."}`)."""

    status_code = 404

    def __init__(self, model: str, record_id: object) -> None:
        super().__init__(f"Couldn't find {model} with 'id'={record_id}")


class LinkNotFoundError(SimError):
    """Raised when a parent-child relationship does not exist (404 with `error` and `reason`)."""

    status_code = 404

    def __init__(self, parent_id: int, child_id: int) -> None:
        super().__init__("Not Found")
        self.reason = f"Student {child_id} is not a child of Parent {parent_id}"

    def body(self) -> dict[str, Any]:
        """Return `{"error": ..., "reason": ...}` as the relationship endpoints do."""
        return {"error": str(self), "reason": self.reason}


class InvalidPayloadError(SimError):
    """Raised when a body has the wrong structure or unpermitted parameters (422)."""

    status_code = 422

    def __init__(self, message: str, allowed_params: Iterable[str] | None = None) -> None:
        super().__init__(message)
        self.allowed_params = sorted(allowed_params) if allowed_params is not None else None

    def body(self) -> dict[str, Any]:
        """Return `{"error": ...}`, plus `allowed_params` for unpermitted parameters."""
        body: dict[str, Any] = {"error": str(self)}
        if self.allowed_params is not None:
            body["allowed_params"] = self.allowed_params
        return body


class ValidationFailedError(SimError):
    """Raised when fields fail validation (422 `{"errors": {field: [message, ...]}}`)."""

    status_code = 422

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k} {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """Return the Rails-style errors hash."""
        return {"errors": self.errors}


class ErrorCollector:
    """Collect field errors so one 422 reports all of them, as Rails validations do."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        """Record one message for one field."""
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        """Raise `ValidationFailedError` when anything was recorded."""
        if self.errors:
            raise ValidationFailedError(self.errors)


class MalformedJSONError(SimError):
    """Raised when a request body is not JSON (400)."""

    status_code = 400

    def __init__(self) -> None:
        super().__init__("Malformed JSON body")


class SeedRejectedError(SimError):
    """Raised when one item of a `POST /_sim/seed` body is invalid; nothing is seeded."""

    def __init__(self, kind: str, index: int, cause: SimError) -> None:
        super().__init__(f"{kind}[{index}]: {cause}")
        self.status_code = cause.status_code
        self.kind = kind
        self.index = index
        self.cause = cause

    def body(self) -> dict[str, Any]:
        """Return the cause's body plus where in the seed it failed."""
        return {**self.cause.body(), "kind": self.kind, "index": self.index}
