"""The webhook's OpenAPI operation: its description, headers, body and answers.

Kept apart from the route (app/routes/webhooks.py), which checks everything by hand for
speed; `openapi.yaml` is generated from this (scripts/export_openapi.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from app.problems import problem_responses
from consumers.events import MAX_EVENTS_PER_REQUEST

MAX_BODY_BYTES = 1024 * 1024


class Accepted(BaseModel):
    """Every event of the request is durably in Kafka."""

    accepted: int = Field(ge=1, description="Number of events accepted")


_DESCRIPTION = """\
Accept one iSAMS change event, or an array of them, signed per Standard Webhooks.
202 means every event is durably in Kafka. A 4xx queued nothing. A 503 may come after
Kafka took part of a valid batch: send the same request again (repeats are harmless,
as each record's current state is what gets applied).

Checks, in this order (the first failing one answers):
1. 404 unknown school;
2. 415 content type not `application/json` (or `application/*+json`) in UTF-8;
3. 413 body over 1 MiB (also refused while streaming, for chunked bodies);
4. 400 body not UTF-8;
5. 401 missing signature headers, timestamp outside ±5 minutes, or no signature
   matching any of the school's secrets;
6. 400 malformed JSON;
7. 422 not one event or an array of 1 to 500 valid events (`errors` lists JSON pointers);
8. 503 with `Retry-After` when Kafka does not acknowledge every event.

Ids in `data` are strings or integers (the iSAMS REST API gives contact and employee ids
as integers); they are normalised to strings.
"""

_HEADER_DESCRIPTIONS = {
    "webhook-id": "Unique id of this delivery (Standard Webhooks).",
    "webhook-timestamp": "Unix time in seconds when it was signed; ±5 minutes tolerance.",
    "webhook-signature": (
        "Space-separated `v1,<base64 HMAC-SHA256>` signatures of `id.timestamp.body`."
    ),
}

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "One change event, or a JSON array of 1 to "
        f"{MAX_EVENTS_PER_REQUEST} change events; at most {MAX_BODY_BYTES} bytes. "
        "Required ids: student events `data.schoolId`; contact events `data.id` and "
        "`data.schoolId`; staff events `data.id`. Ids are strings or integers."
    ),
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/ChangeEvent"},
                    {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/ChangeEvent"},
                        "minItems": 1,
                        "maxItems": MAX_EVENTS_PER_REQUEST,
                    },
                ]
            }
        }
    },
}

_SCHOOL_ID_DESCRIPTION = "School id (slug) from the schools file"

_OPENAPI_EXTRA: dict[str, Any] = {
    "parameters": [
        {
            "name": "school_id",
            "in": "path",
            "required": True,
            "schema": {
                "type": "string",
                "description": _SCHOOL_ID_DESCRIPTION,
                "title": "School Id",
            },
            "description": _SCHOOL_ID_DESCRIPTION,
        },
        *(
            {
                "name": name,
                "in": "header",
                "required": True,
                "description": description,
                "schema": {"type": "string", "minLength": 1},
            }
            for name, description in _HEADER_DESCRIPTIONS.items()
        ),
    ],
    "requestBody": _REQUEST_BODY,
}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(
        {
            400: "Malformed JSON, or a body that is not UTF-8",
            401: "Missing or bad signature, or timestamp outside the tolerance",
            404: "Unknown school",
            413: "Body over 1 MiB",
            415: "Content type is not JSON",
            422: "Valid JSON but not valid events; `errors` points at each field",
            503: "Kafka did not acknowledge every event (some may be queued already): send "
            "the same request again after `Retry-After` seconds; repeats are harmless",
        }
    )
}
_RESPONSES[401]["headers"] = {
    "WWW-Authenticate": {
        "description": "Names the expected scheme (Standard Webhooks signatures)",
        "schema": {"type": "string"},
    }
}
_RESPONSES[503]["headers"] = {
    "Retry-After": {
        "description": "Seconds to wait before sending again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def documented_route(path: str, endpoint: Callable[..., Any]) -> APIRoute:
    """Return the webhook's OpenAPI operation (FastAPI documents only what it routes)."""
    return APIRoute(
        path,
        endpoint,
        methods=["POST"],
        tags=["webhooks"],
        operation_id="receiveIsamsWebhook",
        summary="Receive signed iSAMS change events",
        description=_DESCRIPTION,
        status_code=202,
        response_model=Accepted,
        responses={202: {"description": "Every event is durably in Kafka"}, **_RESPONSES},
        openapi_extra=_OPENAPI_EXTRA,
    )
