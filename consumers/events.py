"""The event contract: what iSAMS (or its connector) sends, and what goes on Kafka.

Shared by the ingest service, the capture commands and the consumers (docs/design.md §2.2,
§2.3): `ChangeEvent` is the webhook payload, `QueuedChange` the value on `isams.changes`,
and `to_message` the whole Kafka record (key `school:kind:id`, value, headers).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from consumers.ports import OutgoingMessage

Kind = Literal["student", "contact", "staff"]
Action = Literal["created", "updated", "deleted"]
EVENT_TYPES: tuple[str, ...] = tuple(
    f"{kind}.{action}"
    for kind in ("student", "contact", "staff")
    for action in ("created", "updated", "deleted")
)
EventType = Literal[
    "student.created",
    "student.updated",
    "student.deleted",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "staff.created",
    "staff.updated",
    "staff.deleted",
]
MAX_EVENTS_PER_REQUEST = 500
ID_FIELDS = ("schoolId", "schoolCode", "id")


def _id_text(value: object) -> object:
    """Take an id as iSAMS gives it: a string, or a JSON integer (contact and employee ids).

    An integer becomes its decimal text, so Kafka keys, ledger rows and logs see one form
    whichever way the sender wrote it. Anything else (a boolean, a fraction, a negative
    number, a list) is no id and is refused with a message saying what is.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    raise ValueError("an id is a string or a non-negative integer")


def _id_schema(description: str, min_length: int) -> WithJsonSchema:
    text: dict[str, object] = {"type": "string", "maxLength": 64}
    if min_length:
        text["minLength"] = min_length
    return WithJsonSchema(
        {
            "anyOf": [
                text,
                {"type": "integer", "minimum": 0},
                {"type": "null"},
            ],
            "default": None,
            "description": description,
        }
    )


RecordId = Annotated[
    str | None,
    BeforeValidator(_id_text),
    _id_schema("An iSAMS id: a string, or an integer (normalised to its decimal text)", 1),
]
SchoolCode = Annotated[
    str | None,
    BeforeValidator(_id_text),
    _id_schema("The student's School Code: a string, or an integer (normalised to text)", 0),
]


class EventData(BaseModel):
    """Ids of the changed record, and optionally the record itself (a "fat" event)."""

    model_config = ConfigDict(extra="allow")

    schoolId: RecordId = Field(default=None, min_length=1, max_length=64)  # noqa: N815  (iSAMS field name)
    schoolCode: SchoolCode = Field(default=None, max_length=64)  # noqa: N815  (iSAMS field name)
    id: RecordId = Field(default=None, min_length=1, max_length=64)
    managebacAccess: bool | None = None  # noqa: N815  (iSAMS field name)
    record: dict[str, Any] | None = None


class ChangeEvent(BaseModel):
    """One change notification in the Standard Webhooks payload shape."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    timestamp: datetime
    data: EventData

    @model_validator(mode="after")
    def _ids_for_kind(self) -> ChangeEvent:
        required = {"student": ("schoolId",), "contact": ("id", "schoolId"), "staff": ("id",)}
        for name in required[self.kind]:
            if getattr(self.data, name) is None:
                raise ValueError(f"data.{name} is required for {self.kind} events")
        return self

    @property
    def kind(self) -> Kind:
        kind = self.type.split(".", 1)[0]
        assert kind in ("student", "contact", "staff")
        return kind  # type: ignore[return-value]

    @property
    def action(self) -> Action:
        return self.type.split(".", 1)[1]  # type: ignore[return-value]

    @property
    def record_id(self) -> str:
        """The iSAMS id that names the record: a student's schoolId, else data.id."""
        value = self.data.schoolId if self.kind == "student" else self.data.id
        assert value is not None
        return value


class QueuedChange(BaseModel):
    """The Kafka message value on `isams.changes`: the event plus where it came from."""

    model_config = ConfigDict(extra="forbid")

    type: EventType
    timestamp: datetime
    data: EventData
    school: str
    webhook_id: str
    received_at: datetime
    attempts: int = 0

    @classmethod
    def from_event(
        cls, event: ChangeEvent, school: str, webhook_id: str, received_at: datetime
    ) -> QueuedChange:
        return cls(
            type=event.type,
            timestamp=event.timestamp,
            data=event.data,
            school=school,
            webhook_id=webhook_id,
            received_at=received_at,
        )

    @property
    def event(self) -> ChangeEvent:
        return ChangeEvent(type=self.type, timestamp=self.timestamp, data=self.data)

    @property
    def key(self) -> str:
        """Partition key `school:kind:id`: keeps one record's changes in order."""
        event = self.event
        return f"{self.school}:{event.kind}:{event.record_id}"

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_bytes(cls, value: bytes) -> QueuedChange:
        return cls.model_validate_json(value)


def _ids_as_text(raw: Mapping[str, Any], event: ChangeEvent) -> Mapping[str, Any]:
    """Return the raw event with its `data` ids as text (iSAMS sends contact and employee
    ids as integers), so every message on the topic carries one form; as is otherwise."""
    data = raw.get("data")
    if not isinstance(data, Mapping) or all(
        isinstance(data.get(name), str | None) for name in ID_FIELDS
    ):
        return raw
    ids = {name: getattr(event.data, name) for name in ID_FIELDS if name in data}
    return {**raw, "data": {**data, **ids}}


def to_message(
    event: ChangeEvent,
    school_id: str,
    webhook_id: str,
    received_at: datetime,
    raw: Mapping[str, Any] | None = None,
) -> OutgoingMessage:
    """Build the `isams.changes` record: key `school:kind:id`, value the queued change.

    `raw` is the event exactly as received and validated (hot path: it is serialised as is
    instead of dumping the model again); without it the model is dumped.
    """
    if raw is None:
        value = QueuedChange.from_event(
            event, school=school_id, webhook_id=webhook_id, received_at=received_at
        ).to_bytes()
    else:
        value = orjson.dumps(
            {
                **_ids_as_text(raw, event),
                "school": school_id,
                "webhook_id": webhook_id,
                "received_at": received_at,
                "attempts": 0,
            },
            option=orjson.OPT_UTC_Z,
        )
    return OutgoingMessage(
        key=f"{school_id}:{event.kind}:{event.record_id}".encode(),
        value=value,
        headers=(
            ("webhook-id", webhook_id.encode()),
            ("school", school_id.encode()),
            ("type", event.type.encode()),
            ("content-type", b"application/json"),
        ),
    )
