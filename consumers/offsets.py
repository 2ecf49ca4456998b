"""Which offset may be committed: the commit decision, kept pure so it can be tested alone.

Records of one partition finish out of order (different keys run concurrently). Kafka's
committed offset means "everything before this is done", so it may only advance to the
lowest offset still in flight: a record that fails is never passed over because a later
one succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")


@dataclass
class _PartitionProgress:
    next_offset: int | None = None  # one past the highest offset handed out
    in_flight: set[int] = field(default_factory=set)
    committed: int | None = None


class OffsetTracker(Generic[P]):
    """Track handed-out and finished offsets per partition; say what is safe to commit."""

    def __init__(self) -> None:
        self._partitions: dict[P, _PartitionProgress] = {}

    def started(self, partition: P, offset: int) -> None:
        """Note that the record at `offset` was handed to a worker."""
        progress = self._partitions.setdefault(partition, _PartitionProgress())
        progress.in_flight.add(offset)
        if progress.next_offset is None or offset >= progress.next_offset:
            progress.next_offset = offset + 1

    def finished(self, partition: P, offset: int) -> None:
        """Note that the record at `offset` is applied, skipped or parked."""
        progress = self._partitions.get(partition)
        if progress is not None:
            progress.in_flight.discard(offset)

    def in_flight(self, partition: P) -> int:
        """Return how many records of the partition are still running."""
        progress = self._partitions.get(partition)
        return len(progress.in_flight) if progress is not None else 0

    def committable(self) -> dict[P, int]:
        """Return, per partition, the offset to commit if it moved since the last commit."""
        offsets: dict[P, int] = {}
        for partition, progress in self._partitions.items():
            if progress.next_offset is None:
                continue
            safe = min(progress.in_flight) if progress.in_flight else progress.next_offset
            if progress.committed is None or safe > progress.committed:
                offsets[partition] = safe
        return offsets

    def committed(self, offsets: dict[P, int]) -> None:
        """Remember what was committed, so the same offsets are not committed again."""
        for partition, offset in offsets.items():
            progress = self._partitions.get(partition)
            if progress is not None:
                progress.committed = offset

    def forget(self, partitions: set[P]) -> None:
        """Drop partitions this consumer no longer owns."""
        for partition in partitions:
            self._partitions.pop(partition, None)
