"""Webhook signature verification: rotation, tolerance, and malformed headers as 401s."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from app.security import SignatureError, WebhookVerifier, build_verifiers
from consumers.settings import ConfigError, SchoolsFile

OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"x" * 32).decode()
BODY = b'{"type":"student.updated","timestamp":"2026-11-28T10:00:00Z","data":{"schoolId":"1"}}'


def headers(
    body: bytes = BODY, secret: str = OLD, at: datetime | None = None, msg_id: str = "msg_1"
) -> dict[str, str]:
    when = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


@pytest.fixture
def verifier() -> WebhookVerifier:
    return WebhookVerifier([SecretStr(OLD), SecretStr(NEW)])


def test_a_valid_signature_returns_the_webhook_id(verifier: WebhookVerifier) -> None:
    assert verifier.verify(BODY, headers(msg_id="msg_42")) == "msg_42"


def test_each_secret_of_a_rotation_verifies(verifier: WebhookVerifier) -> None:
    assert verifier.verify(BODY, headers(secret=OLD)) == "msg_1"
    assert verifier.verify(BODY, headers(secret=NEW)) == "msg_1"


def test_one_matching_signature_among_several_is_enough(verifier: WebhookVerifier) -> None:
    good = headers()
    other = headers(secret=OTHER)["webhook-signature"]
    good["webhook-signature"] = f"{other} {good['webhook-signature']}"
    assert verifier.verify(BODY, good) == "msg_1"


def test_an_unknown_secret_is_refused(verifier: WebhookVerifier) -> None:
    with pytest.raises(SignatureError, match="matches none"):
        verifier.verify(BODY, headers(secret=OTHER))


def test_a_changed_body_is_refused(verifier: WebhookVerifier) -> None:
    with pytest.raises(SignatureError, match="matches none"):
        verifier.verify(BODY.replace(b'"1"', b'"2"'), headers())


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_timestamps_outside_five_minutes_are_refused(
    verifier: WebhookVerifier, offset: timedelta
) -> None:
    with pytest.raises(SignatureError, match="tolerance"):
        verifier.verify(BODY, headers(at=datetime.now(UTC) + offset))


def test_timestamps_within_five_minutes_pass(verifier: WebhookVerifier) -> None:
    at = datetime.now(UTC) - timedelta(minutes=4)
    assert verifier.verify(BODY, headers(at=at)) == "msg_1"


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(verifier: WebhookVerifier, name: str) -> None:
    incomplete = headers()
    del incomplete[name]
    with pytest.raises(SignatureError, match=name):
        verifier.verify(BODY, incomplete)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-signature", "garbage"),
        ("webhook-signature", "v1,not base64!"),
        ("webhook-signature", "v1,a,b"),
        ("webhook-signature", "v2,AAAA"),
        ("webhook-timestamp", "yesterday"),
        ("webhook-timestamp", "nan"),
        ("webhook-timestamp", "1e400"),
    ],
)
def test_malformed_headers_are_signature_errors_not_crashes(
    verifier: WebhookVerifier, name: str, value: str
) -> None:
    with pytest.raises(SignatureError):
        verifier.verify(BODY, headers() | {name: value})


def _schools(secret: str) -> SchoolsFile:
    return SchoolsFile.model_validate(
        {
            "schools": [
                {
                    "id": "demo",
                    "webhook_secrets": [OLD, secret],
                    "isams": {
                        "base_url": "https://i.example",
                        "client_id": "c",
                        "client_secret": "s",
                    },
                    "managebac": {"base_url": "https://m.example", "token": "t"},
                }
            ]
        }
    )


def test_build_verifiers_gives_one_per_school() -> None:
    verifiers = build_verifiers(_schools(NEW))
    assert verifiers["demo"].verify(BODY, headers(secret=NEW)) == "msg_1"


@pytest.mark.parametrize("secret", ["whsec_a", "whsec_", "whsec_=="])
def test_a_secret_that_is_not_base64_names_the_school_and_index(secret: str) -> None:
    with pytest.raises(ConfigError, match=r"schools\[demo\]\.webhook_secrets\[1\]"):
        build_verifiers(_schools(secret))
