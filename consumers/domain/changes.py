"""What the poller compares between two reads of iSAMS: each record's content hash.

iSAMS pushes nothing and employees carry no `lastUpdated`, so a change is found by hashing
every record as iSAMS returned it and comparing with the hash last published (docs/design.md
§6, "Poll"). The hash covers the whole record, ISO expansions included, with sorted keys:
the same content always hashes the same, whatever order iSAMS sends its keys in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class PolledHash:
    """What the poller last published of one record: its content hash and, for a contact,
    the student it belongs to (a vanished contact's `contact.deleted` must name them)."""

    hash: str
    related_id: str | None = None


def record_hash(record: Mapping[str, Any]) -> str:
    """Return a stable sha256 of a record exactly as iSAMS returned it (keys sorted at every
    level; list order kept, as iSAMS's order is part of what it says)."""
    encoded = orjson.dumps(dict(record), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(encoded).hexdigest()
