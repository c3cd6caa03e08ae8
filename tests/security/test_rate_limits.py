"""Rate limits hold per tenant under concurrent clients, across gateway replicas (one Redis)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from omium.kernel.settings import BucketSettings, OmiumSettings, TierSettings
from tests.security.fixtures import API, Tenant, TokenFactory

pytestmark = pytest.mark.integration

CAPACITY, REFILL_PER_S = 10, 1.0


def test_a_tenants_bucket_holds_under_concurrent_clients_on_two_replicas(
    app_factory: Callable[..., FastAPI],
    security_settings: OmiumSettings,
    tokens: TokenFactory,
) -> None:
    limited, neighbour = f"t-{uuid.uuid4().hex[:12]}", f"t-{uuid.uuid4().hex[:12]}"
    bucket = BucketSettings(capacity=CAPACITY, refill_per_s=REFILL_PER_S)
    limits = security_settings.gateway.rate_limit.model_copy(
        update={
            "tiers": {
                **security_settings.gateway.rate_limit.tiers,
                "tiny": TierSettings(tenant=bucket, api_key=bucket),
            },
            "tenant_tiers": {limited: "tiny"},
        }
    )
    with (
        TestClient(app_factory(rate_limit=limits), raise_server_exceptions=False) as one,
        TestClient(app_factory(rate_limit=limits), raise_server_exceptions=False) as two,
    ):
        callers = [Tenant(client, tokens, limited) for client in (one, two)]
        neighbours = [Tenant(client, tokens, neighbour) for client in (one, two)]

        def call(index: int) -> tuple[int, str | None]:
            caller = callers[index % 2]
            response = caller.client.get(f"{API}/whoami", headers=caller.headers("viewer"))
            return response.status_code, response.headers.get("Retry-After")

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(call, range(60)))
        elapsed = time.monotonic() - started
        others = [n.get("/whoami").status_code for n in neighbours for _ in range(5)]

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 429}, statuses
    allowed = CAPACITY + REFILL_PER_S * elapsed + 1
    assert CAPACITY <= statuses[200] <= allowed, (statuses, elapsed)
    assert all(retry is not None and int(retry) >= 1 for status, retry in answers if status == 429)
    assert others == [200] * 10  # another tenant is not slowed by this one
