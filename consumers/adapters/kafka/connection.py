"""How every Kafka client of ours connects: aiokafka's keyword options from the settings.

Adapters take `str | KafkaConnection`, so a plain bootstrap string still works (local
broker, tests) and production passes the settings' connection with its security settings.
"""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from consumers.settings import KafkaConnection

Kafka = str | KafkaConnection


def client_options(kafka: Kafka) -> dict[str, Any]:
    """Return the keyword arguments any aiokafka client takes to connect."""
    if isinstance(kafka, str):
        return {"bootstrap_servers": kafka}
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        cafile = str(kafka.ssl_cafile) if kafka.ssl_cafile else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    if kafka.sasl_password is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = kafka.sasl_password.get_secret_value()
    return options
