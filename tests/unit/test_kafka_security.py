"""TLS and SASL for Kafka from the environment: what each setting gives the clients, and
the settings that stop a process at start-up, naming the variable, instead of connecting
without the security asked for. (Through a real TLS listener: tests/integration/test_kafka_tls.py.)"""

from __future__ import annotations

import importlib.util
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from services.cli.main import app
from services.settings import KafkaSecuritySettings, KafkaSecurityUnusable, Settings

SECRET = "s3cret-password-never-shown"


@pytest.fixture(autouse=True)
def _no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KafkaSecuritySettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def pem_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if importlib.util.find_spec("trustme") is None:
        pytest.skip("needs trustme to make certificates: pip install -e '.[test]'")
    import trustme

    folder = tmp_path_factory.mktemp("pem")
    ca = trustme.CA()
    client = ca.issue_cert("samhandling-client")
    files = {
        "ca": folder / "ca.pem",
        "cert": folder / "client.pem",
        "key": folder / "client.key",
        "other_key": folder / "other.key",
        "not_pem": folder / "not.pem",
    }
    ca.cert_pem.write_to_path(files["ca"])
    client.cert_chain_pems[0].write_to_path(files["cert"])
    client.private_key_pem.write_to_path(files["key"])
    ca.issue_cert("someone-else").private_key_pem.write_to_path(files["other_key"])
    files["not_pem"].write_text("not a certificate\n")
    return files


def _options(**settings: Any) -> dict[str, Any]:
    return KafkaSecuritySettings(**settings).connection("kafka-1:9093,kafka-2:9093").client_options()


def test_without_settings_the_clients_speak_plaintext_as_before() -> None:
    assert _options() == {"bootstrap_servers": "kafka-1:9093,kafka-2:9093"}
    assert KafkaSecuritySettings().security() is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_gives_every_client_the_mechanism_the_credentials_and_a_verifying_tls_context(
    mechanism: str,
) -> None:
    options = _options(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="samhandling",
        kafka_sasl_password=SECRET,
    )

    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("samhandling", SECRET)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_sasl_over_plaintext_has_no_tls_context_and_scram_512_is_the_default() -> None:
    options = _options(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password=SECRET
    )

    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["ssl_context"] is None


def test_ssl_trusts_the_ca_file_given_and_loads_the_client_certificate(pem_files: dict[str, Path]) -> None:
    options = _options(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pem_files["ca"],
        kafka_ssl_certfile=pem_files["cert"],
        kafka_ssl_keyfile=pem_files["key"],
    )

    assert options["security_protocol"] == "SSL"
    trusted = options["ssl_context"].get_ca_certs()
    assert len(trusted) == 1 and "trustme" in str(trusted[0]["subject"]), trusted


def test_the_password_is_never_in_the_settings_repr() -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password=SECRET
    )

    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"},
            "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": SECRET}, "sends no credentials"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_PASSWORD": SECRET}, "sends no credentials"),
        ({"KAFKA_SSL_CAFILE": "{ca}"}, "uses no TLS"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "{cert}"}, "go together"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/no/such/ca.pem"},
            "does not point to a file",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": SECRET,
            },
            "'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'",
        ),
    ],
)
def test_an_incomplete_or_contradictory_setting_stops_at_start_up_naming_it(
    environment: dict[str, str], says: str, pem_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value.format(ca=pem_files["ca"], cert=pem_files["cert"]))

    with pytest.raises(ValidationError, match=says) as raised:
        KafkaSecuritySettings()

    assert SECRET not in str(raised.value)


@pytest.mark.parametrize(
    ("files", "says"),
    [
        ({"kafka_ssl_cafile": "not_pem"}, "KAFKA_SSL_CAFILE"),
        ({"kafka_ssl_certfile": "cert", "kafka_ssl_keyfile": "other_key"}, "KAFKA_SSL_CERTFILE"),
        ({"kafka_ssl_certfile": "not_pem", "kafka_ssl_keyfile": "key"}, "KAFKA_SSL_CERTFILE"),
    ],
)
def test_a_file_that_does_not_load_is_named_at_start_up(
    files: dict[str, str], says: str, pem_files: dict[str, Path]
) -> None:
    settings = KafkaSecuritySettings(
        kafka_security_protocol="SSL", **{field: pem_files[name] for field, name in files.items()}
    )

    with pytest.raises(KafkaSecurityUnusable, match=says):
        settings.security()


def test_the_services_settings_carry_the_same_security() -> None:
    settings = Settings(
        kafka_bootstrap_servers="kafka:9093",
        database_url="postgresql://db/settlement",
        pseudonym_key="k" * 32,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="samhandling",
        kafka_sasl_password=SECRET,
    )

    options = settings.kafka().client_options()

    assert options["bootstrap_servers"] == "kafka:9093" and options["security_protocol"] == "SASL_SSL"


def test_a_service_started_with_an_incomplete_security_setting_says_so_in_a_line() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "PSEUDONYM_KEY": "k" * 32,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    }

    result = CliRunner().invoke(app, ["run", "intake"], env=env | {"COLUMNS": "200"})

    assert result.exit_code == 2, result.output
    assert "intake: KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "environment", "says"),
    [
        (
            ["close", "2025-10"],
            {
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CAFILE": "{not_pem}",
            },
            "KAFKA_SSL_CAFILE",
        ),
        (
            ["close", "2025-10"],
            {
                "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            },
            "KAFKA_SASL_USERNAME",
        ),
        (["up"], {"KAFKA_SECURITY_PROTOCOL": "SSL"}, "the embedded broker takes plaintext only"),
    ],
)
def test_a_command_with_unusable_security_settings_says_why_in_a_line(
    args: list[str], environment: dict[str, str], says: str, pem_files: dict[str, Path], tmp_path: Path
) -> None:
    env = {name: value.format(not_pem=pem_files["not_pem"]) for name, value in environment.items()}
    keep = {"PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV"}
    base = {name: value for name, value in os.environ.items() if name in keep}

    result = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args, "--data-dir", str(tmp_path / "state")],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
