"""How every Kafka client of ours connects: bootstrap servers plus TLS/SASL options.

Adapters take `str | KafkaConnection`, so a plain bootstrap string still works (local
broker, tests) and production passes the settings' connection with its security options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KafkaConnection:
    """Bootstrap servers and the aiokafka keyword options that secure the connection."""

    bootstrap: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.bootstrap  # never the options: they may hold a password


Kafka = str | KafkaConnection


def client_options(kafka: Kafka) -> dict[str, Any]:
    """Return the keyword arguments any aiokafka client takes to connect."""
    if isinstance(kafka, str):
        return {"bootstrap_servers": kafka}
    return {"bootstrap_servers": kafka.bootstrap, **kafka.options}
