"""Who may call: Standard Webhooks signatures (several secrets per school, for rotation)
and the admin API's bearer token.

The `standardwebhooks` library does the HMAC and the ±5 minute timestamp tolerance; this
module adds rotation (a request verifies if any of the school's secrets verifies it),
translates the library's errors (including the `ValueError`s it lets escape on a malformed
signature header) into our own `SignatureError`, and names a broken secret at start-up.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from pydantic import SecretStr
from standardwebhooks.webhooks import (
    EmptyWebhookSecretError,
    Webhook,
    WebhookVerificationError,
)

from app.problems import ProblemError
from consumers.settings import ConfigError, SchoolsFile

WEBHOOK_HEADERS: tuple[str, str, str] = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """Raised when a webhook's signature headers are missing, stale or match no secret."""


class WebhookVerifier:
    """Verify one school's webhooks against each of its secrets (rotation)."""

    def __init__(self, secrets: Sequence[SecretStr]) -> None:
        if not secrets:
            raise ValueError("at least one webhook secret is required")
        self._webhooks = [Webhook(secret.get_secret_value()) for secret in secrets]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Check `body` against the Standard Webhooks headers; return the webhook id.

        `body` must be UTF-8 (the library signs text); callers reject other bodies first.
        """
        present = {name: headers.get(name, "") for name in WEBHOOK_HEADERS}
        missing = [name for name, value in present.items() if not value]
        if missing:
            raise SignatureError(f"missing header(s): {', '.join(missing)}")
        text = body.decode("utf-8")
        reasons: list[str] = []
        for webhook in self._webhooks:
            try:
                webhook.verify(text, present, json_parse=False)
            except WebhookVerificationError as exc:
                reasons.append(str(exc) or "verification failed")
                if "timestamp" in str(exc).lower() or "headers" in str(exc).lower():
                    break  # the same for every secret: no point trying the others
            except ValueError:  # a malformed `v1,<base64>` entry escapes the library as is
                reasons.append("malformed webhook-signature header")
                break
            else:
                return present["webhook-id"]
        raise SignatureError(_explain(reasons))


def _explain(reasons: Sequence[str]) -> str:
    reason = reasons[0] if reasons else "verification failed"
    if reason == "Invalid Signature Headers":
        return "webhook-timestamp is not a Unix timestamp in seconds"
    if reason.startswith("Message timestamp too"):
        return "webhook-timestamp is outside the ±5 minute tolerance"
    if reason == "No matching signature found":
        return "webhook-signature matches none of the school's secrets"
    return reason


def build_verifiers(schools: SchoolsFile) -> dict[str, WebhookVerifier]:
    """Build one verifier per school; a secret that is not valid base64 is a ConfigError."""
    verifiers: dict[str, WebhookVerifier] = {}
    for school in schools.schools:
        for index, secret in enumerate(school.webhook_secrets):
            try:
                Webhook(secret.get_secret_value())
            except (ValueError, EmptyWebhookSecretError):
                raise ConfigError(
                    f"schools file: schools[{school.id}].webhook_secrets[{index}]: "
                    "not a valid Standard Webhooks secret (whsec_ followed by base64)"
                ) from None
        verifiers[school.id] = WebhookVerifier(school.webhook_secrets)
    return verifiers


def check_admin_token(token: SecretStr | None, authorization: str) -> None:
    """Refuse a request without `Authorization: Bearer <token>` (constant-time compare).

    403 while no admin token is configured (the admin API is off), else 401.
    """
    if token is None:
        raise ProblemError(
            403,
            "admin-disabled",
            "Admin API disabled",
            "The admin API is off until SYNC_ADMIN_TOKEN is set.",
        )
    scheme, _, presented = authorization.partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected):
        raise ProblemError(
            401,
            "admin-unauthorized",
            "Admin token required",
            "Send Authorization: Bearer <SYNC_ADMIN_TOKEN>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
