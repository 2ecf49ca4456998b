"""RFC 9457 problem details: every error this service answers is `application/problem+json`.

Routes raise `ProblemError`; the handlers installed by `install_problem_handlers` render it,
and also turn FastAPI's request validation errors, routing 404/405 and unexpected exceptions
into the same shape, so a client parses one error format whatever went wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Tag URIs (RFC 4151) name problem types without promising a page to dereference, as
# RFC 9457 §3.1.1 suggests for identifiers that are not meant to be resolved.
_TYPE_BASE = "tag:isams-sync,2026:problems/"


class FieldError(BaseModel):
    """One invalid value: where it is (RFC 6901 JSON pointer into the body) and why."""

    model_config = ConfigDict(frozen=True)

    pointer: str = Field(description="JSON pointer (RFC 6901) to the invalid value in the body")
    detail: str


class Problem(BaseModel):
    """An RFC 9457 problem details object, as every error response of this API carries."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description="URI naming the problem type; `about:blank` for plain HTTP")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str = Field(description="The request path that had the problem")
    errors: list[FieldError] | None = Field(
        default=None, description="Present on 422: each invalid field, with a JSON pointer"
    )


def problem_type(slug: str) -> str:
    """Return the type URI of one of this service's problem types."""
    return f"{_TYPE_BASE}{slug}"


class ProblemError(Exception):
    """Raised by a route to answer with a problem details response."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})


def problem_response(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render a problem details response for `request`."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = [error.model_dump() for error in errors]
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        status=exc.status,
        type_=problem_type(exc.slug),
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    """Render Starlette's routing errors (404 no route, 405 wrong method) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return problem_response(
        request,
        status=exc.status_code,
        type_="about:blank",
        title=_phrase(exc.status_code),
        detail=detail,
        headers=exc.headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    """Render FastAPI's parameter validation errors with a pointer per field."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(pointer=json_pointer(error.get("loc", ())), detail=str(error.get("msg", "")))
        for error in exc.errors()
    ]
    return problem_response(
        request,
        status=422,
        type_=problem_type("invalid-request"),
        title="Invalid request",
        detail="The request's parameters are not valid.",
        errors=errors,
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """Answer 500 as a problem; the traceback goes to the log, never to the client."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request,
        status=500,
        type_="about:blank",
        title=_phrase(500),
        detail="The server could not handle the request.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error answer of `app` a problem details response."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)


def json_pointer(location: Sequence[str | int]) -> str:
    """Turn a location path (pydantic `loc`, list indexes) into an RFC 6901 JSON pointer."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """Describe error statuses for OpenAPI, each with the problem+json schema."""
    return {
        status: {
            "description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, description in descriptions.items()
    }
