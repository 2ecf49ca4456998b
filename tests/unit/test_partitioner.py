"""The memoised partitioner picks exactly the partition aiokafka's default one picks."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from consumers.adapters.kafka.partitioner import default_partitioner

_AIOKAFKA = DefaultPartitioner()


@given(key=st.binary(max_size=80), count=st.integers(min_value=1, max_value=64))
def test_every_key_lands_where_aiokafka_and_the_java_client_put_it(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = _AIOKAFKA(key, partitions, partitions)
    assert default_partitioner(key, partitions, partitions) == expected
    assert default_partitioner(key, partitions, partitions) == expected  # from the cache


def test_known_java_client_placements() -> None:
    # What Kafka's Java producer picks for these keys among 1000 partitions (the vectors
    # kafka-python and aiokafka test their murmur2 against).
    partitions = list(range(1000))
    assert default_partitioner(b"", partitions, partitions) == 681
    assert default_partitioner(b"a", partitions, partitions) == 524
    assert default_partitioner(b"ab", partitions, partitions) == 434
    assert default_partitioner(b"abc", partitions, partitions) == 107
    assert default_partitioner(b"123456789", partitions, partitions) == 566
    assert default_partitioner(b"\x00 ", partitions, partitions) == 742


def test_a_missing_key_picks_an_available_partition() -> None:
    assert default_partitioner(None, [0, 1, 2], [2]) == 2
