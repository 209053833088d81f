"""Where the broker and database are: the real ones when KAFKA_BOOTSTRAP_SERVERS and
DATABASE_URL are set, the embedded ones otherwise. `settlement up` records what it
started in DATA_DIR/runtime.env so other commands (`settlement close`) find it."""

from __future__ import annotations

import asyncio
import os
import secrets
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from contracts.v1 import topics
from services.adapters import outbox
from services.adapters.kafka_connection import KafkaConnection
from services.adapters.migrations import upgrade
from services.runtime.embedded import EmbeddedBroker, EmbeddedPostgres
from services.runtime.lock import holder_gone
from services.runtime.topics import ensure_topics
from services.settings import KafkaSecurityUnusable, load_kafka_security, secrets_dir

if TYPE_CHECKING:
    from faststream.security import BaseSecurity

RUNTIME_FILE = "runtime.env"


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    database_url: str
    pseudonym_key: str
    embedded: bool
    # TLS and SASL for the broker (KAFKA_SECURITY_PROTOCOL and the rest, from the
    # environment); the services started with these endpoints read the same variables.
    kafka_security: BaseSecurity | None = None

    @property
    def kafka(self) -> KafkaConnection:
        return KafkaConnection(self.bootstrap_servers, self.kafka_security)

    def as_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "PSEUDONYM_KEY": self.pseudonym_key,
        }


def _pseudonym_key(data_dir: Path) -> str:
    if key := configured("PSEUDONYM_KEY"):
        return key
    path = data_dir / "pseudonym.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Environment:
    """Start (or find) the broker and the database; stop what it started."""

    def __init__(self, data_dir: Path, *, fresh_database: bool = False) -> None:
        self.data_dir = data_dir
        self._fresh = fresh_database
        self._stack = ExitStack()
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None

    def __enter__(self) -> Endpoints:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        security = load_kafka_security()
        kafka_security = security.security()  # before anything is started: it may refuse a file
        try:
            bootstrap = configured("KAFKA_BOOTSTRAP_SERVERS")
            if not bootstrap:
                if security.secured:
                    raise KafkaSecurityUnusable(
                        f"KAFKA_SECURITY_PROTOCOL={security.kafka_security_protocol} is set, but "
                        "KAFKA_BOOTSTRAP_SERVERS is not: the embedded broker takes plaintext only"
                    )
                self.broker = self._stack.enter_context(EmbeddedBroker(log_file=self.data_dir / "broker.log"))
                bootstrap = self.broker.bootstrap_servers
            database_url = configured("DATABASE_URL")
            if not database_url:
                self.postgres = self._stack.enter_context(
                    EmbeddedPostgres(self.data_dir / "pgdata", delete_on_stop=self._fresh)
                )
                database_url = self.postgres.url
        except BaseException:
            self._stack.close()
            raise
        endpoints = Endpoints(
            bootstrap, database_url, _pseudonym_key(self.data_dir), self.broker is not None, kafka_security
        )
        runtime_file = self.data_dir / RUNTIME_FILE
        runtime_file.write_text(
            f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}\nDATABASE_URL={database_url}\n", encoding="utf-8"
        )
        self._stack.callback(runtime_file.unlink, missing_ok=True)
        return endpoints

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def prepare(endpoints: Endpoints) -> int:
    """Migrate the database and create the topics; both are safe to repeat. A statement topic
    made anew over a ledger with statements (the embedded broker keeps nothing across a
    restart of `settlement up`) is given them again: the statements of every closed month,
    queued in the outbox as first published. Returns how many."""
    upgrade(endpoints.database_url)
    created = asyncio.run(ensure_topics(endpoints.kafka))
    if topics.SETTLEMENTS not in created.names:
        return 0
    statements, _copies = asyncio.run(outbox.issue_again(endpoints.database_url, topics.SETTLEMENTS, None))
    return statements


def record_runtime(data_dir: Path, values: dict[str, str]) -> None:
    """Add to what `settlement up` tells the commands run beside it (e.g. LAGMONITOR_URL)."""
    with (data_dir / RUNTIME_FILE).open("a", encoding="utf-8") as f:
        f.writelines(f"{name}={value}\n" for name, value in values.items())


def configured(name: str) -> str | None:
    """A setting as the services read it: the environment, else its file in SECRETS_DIR."""
    return os.environ.get(name) or _secret_files().get(name)


def _secret_files() -> dict[str, str]:
    """The files of SECRETS_DIR by the variable each stands for (`database_url`: DATABASE_URL)."""
    folder = secrets_dir()
    if folder is None:
        return {}
    return {
        path.name.upper(): path.read_text(encoding="utf-8").strip()
        for path in sorted(Path(folder).glob("[!.]*"))  # not Kubernetes' ..data links
        if path.is_file()
    }


def runtime_values(data_dir: Path) -> dict[str, str]:
    """The environment first, then the files of SECRETS_DIR (as the services read them),
    then what a running `settlement up` recorded: not what one that was killed left behind,
    whose broker and database are gone with it."""
    values = _secret_files() | dict(os.environ)
    runtime_file = data_dir / RUNTIME_FILE
    if runtime_file.exists() and not holder_gone(data_dir):
        for line in runtime_file.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            values.setdefault(name, value)
    return values


def find_kafka(data_dir: Path) -> KafkaConnection:
    """For commands that only publish: the broker, from the environment or runtime.env (TLS
    and SASL from the environment only). Unlike `find_endpoints` it needs no database and no
    pseudonym key."""
    if bootstrap := runtime_values(data_dir).get("KAFKA_BOOTSTRAP_SERVERS"):
        return load_kafka_security().connection(bootstrap)
    raise _not_found(["KAFKA_BOOTSTRAP_SERVERS"], data_dir)


def _not_found(names: list[str], data_dir: Path) -> LookupError:
    return LookupError(
        f"{' and '.join(names)} not set, and no `settlement up` is running with data dir {data_dir}"
    )


def find_endpoints(data_dir: Path) -> Endpoints:
    """For commands run beside `settlement up`: the environment first, then runtime.env."""
    values = runtime_values(data_dir)
    missing = [n for n in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL") if not values.get(n)]
    if missing:
        raise _not_found(missing, data_dir)
    # Read, never made: these commands pseudonymise nothing, and a key made here would not
    # be the services' (it also failed where the data dir does not exist).
    key_file = data_dir / "pseudonym.key"
    return Endpoints(
        values["KAFKA_BOOTSTRAP_SERVERS"],
        values["DATABASE_URL"],
        values.get("PSEUDONYM_KEY") or (key_file.read_text().strip() if key_file.exists() else ""),
        embedded=False,
        kafka_security=load_kafka_security().security(),
    )
