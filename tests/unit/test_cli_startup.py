"""The command line starts without FastStream, Alembic or SQLAlchemy: an operator's
`settlement pending` or `lag` waited a second longer than its answer took for libraries only
the services and `migrate` use (2.5 s to print the help before, 1.2 s after, on the 2-core
development machine). Imported when a command needs them: a secured broker, a migration."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("faststream", "alembic", "sqlalchemy")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    # Not the caller's Kafka settings: the probe builds its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    return {name.split(".")[0] for name in result.stdout.split()}


def test_the_command_line_and_a_plaintext_connection_leave_the_heavy_libraries_unimported() -> None:
    loaded = _modules_after(
        "import services.cli.main\n"
        "from services.settings import KafkaSecuritySettings\n"
        "assert KafkaSecuritySettings().connection('localhost:9092').client_options() "
        "== {'bootstrap_servers': 'localhost:9092'}"
    )

    assert "services" in loaded and "typer" in loaded  # the probe ran
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_a_secured_connection_still_gets_faststreams_arguments() -> None:
    loaded = _modules_after(
        "from services.settings import KafkaSecuritySettings\n"
        "s = KafkaSecuritySettings(kafka_security_protocol='SASL_PLAINTEXT', kafka_sasl_username='u', "
        "kafka_sasl_password='p')\n"
        "options = s.connection('localhost:9092').client_options()\n"
        "assert options['sasl_plain_username'] == 'u' and options['security_protocol'] == 'SASL_PLAINTEXT', options"
    )

    assert "faststream" in loaded
