"""Omium's Kafka clients authenticate with the SASL settings (SASL_PLAINTEXT, PLAIN here).

The local broker has a SASL listener whose one user's password ``omium up`` generates. Through
it, with ``security_protocol`` and ``sasl_*`` set, Omium creates its topics, produces an event
and reads it back with its own producer and consumer; a wrong password is refused with an
authentication error, never served.
"""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr, ValidationError

from omium.infra.localstack import LocalStack
from omium.kernel.kafka import (
    EventConsumer,
    EventProducer,
    TopicError,
    admin_client,
    ensure_topics,
    topic_name,
)
from omium.kernel.serde import AvroSerde, default_catalog
from omium.kernel.settings import KafkaSettings, OmiumSettings
from omium.testing import sample_event

pytestmark = pytest.mark.integration


def sasl_settings(stack: OmiumSettings, local_stack: LocalStack, password: str) -> KafkaSettings:
    kafka = local_stack.component("kafka")
    user, _ = kafka.sasl_credentials()  # type: ignore[attr-defined]
    return stack.kafka.model_copy(
        update={
            "bootstrap_servers": kafka.sasl_address,  # type: ignore[attr-defined]
            "topic_prefix": f"sasl-{uuid.uuid4().hex[:8]}",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_username": user,
            "sasl_password": SecretStr(password),
        }
    )


def test_clients_authenticate_and_an_event_goes_through(
    stack: OmiumSettings, local_stack: LocalStack
) -> None:
    _, password = local_stack.component("kafka").sasl_credentials()  # type: ignore[attr-defined]
    kafka = sasl_settings(stack, local_stack, password)
    serde = AvroSerde(default_catalog())
    created = ensure_topics(kafka)
    try:
        assert topic_name(kafka, "audit") in created
        event = sample_event("CommandRecorded", tenant_id="t")
        topic = topic_name(kafka, "audit")
        with EventProducer(kafka, serde) as producer:
            producer.send(topic, key="t", value=serde.encode(event))
            producer.flush()
        received: list[dict[str, object]] = []
        group = f"g-{uuid.uuid4().hex[:6]}"
        with EventConsumer(kafka, serde, group_id=group, topics=[topic]) as consumer:
            for _ in range(60):
                received += [c.event for c in consumer.poll(timeout_s=0.5)]
                if received:
                    break
        assert [e["event_id"] for e in received] == [event["event_id"]]
    finally:
        admin_client(kafka).delete_topics(created)


def test_a_wrong_password_is_refused(stack: OmiumSettings, local_stack: LocalStack) -> None:
    kafka = sasl_settings(stack, local_stack, "not-the-password")
    with pytest.raises(TopicError, match=r"(?i)authenticat"):
        ensure_topics(kafka, timeout_s=10)


def test_sasl_without_credentials_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="sasl_mechanism, sasl_username, sasl_password"):
        KafkaSettings(security_protocol="SASL_SSL")


def test_client_config_carries_tls_and_sasl_settings() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="b-1.msk:9096",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="omium",
        sasl_password=SecretStr("s3cret"),
        ssl_ca_location="/etc/ssl/certs/ca-certificates.crt",
    )
    assert kafka.client_config() == {
        "bootstrap.servers": "b-1.msk:9096",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "omium",
        "sasl.password": "s3cret",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": "/etc/ssl/certs/ca-certificates.crt",
    }
    assert "s3cret" not in repr(kafka)
    assert KafkaSettings().client_config() == {"bootstrap.servers": "127.0.0.1:9092"}
