"""Reading an iSAMS REST record into its model: the one parser of every kind.

Lenient (consumers/domain/isams.py says why); a record that cannot be read at all is a
`Skip` whose reason names the unreadable fields only, never their values (they may be a
child's personal data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from consumers.domain.plan import Skip

UNREADABLE = "iSAMS record is unreadable"
M = TypeVar("M", bound=BaseModel)


def parse_record(model: type[M], raw: object) -> M | Skip:
    """Read `raw` (a JSON object as iSAMS sent it) as `model`, or say why it cannot be."""
    if not isinstance(raw, Mapping):
        return Skip(f"{UNREADABLE}: not a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({str(error["loc"][0]) for error in exc.errors() if error["loc"]})
        return Skip(f"{UNREADABLE}: {', '.join(fields) or 'record'}")
