"""Kafka's default partitioning (murmur2 of the key, as the Java client does), memoised.

aiokafka hashes every message key in pure Python (~6 µs of the ingest's CPU per event);
keys repeat (one per iSAMS record, edited again and again), so the hash is cached. The
partition chosen is exactly aiokafka's and the Java client's, so the same record's events
keep landing on the same partition whichever client wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from aiokafka.partitioner import DefaultPartitioner, murmur2

_CACHED_KEYS = 1 << 16  # about 10 MB at most; a school has a few thousand records
_hash = lru_cache(maxsize=_CACHED_KEYS)(murmur2)
_default = DefaultPartitioner()


def default_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """Return the partition for `key`: as `aiokafka.partitioner.DefaultPartitioner`."""
    if key is None:
        return int(_default(key, all_partitions, available))
    return all_partitions[(int(_hash(key)) & 0x7FFFFFFF) % len(all_partitions)]
