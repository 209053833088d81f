"""Run each service as its own operating-system process, and stop them cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

SERVICES = {
    "intake": "services.intake.app",
    "settlement": "services.settlement.app",
    "lagmonitor": "services.lagmonitor.app",
}


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self._env = {**os.environ, **env}
        self._log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> ServiceProcess:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self._log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._process = subprocess.Popen(
            # As a container runs it (docker-compose): a start that fails says why in a line.
            [sys.executable, "-m", "services.cli.main", "run", self.name],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
        )
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    def kill(self) -> None:
        """SIGKILL: no clean-up, as in a crash."""
        if self.alive():
            assert self._process is not None
            self._process.kill()
            self._process.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            assert self._process is not None
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._log:
            self._log.close()
            self._log = None


class ServiceGroup:
    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        names: tuple[str, ...] = tuple(SERVICES),
        *,
        service_env: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """`service_env` adds variables for one service only (its own metrics port)."""
        service_env = service_env or {}
        self.processes = {
            name: ServiceProcess(name, {**env, **service_env.get(name, {})}, log_dir) for name in names
        }

    def start(self) -> ServiceGroup:
        for process in self.processes.values():
            process.start()
        return self

    def dead(self) -> list[ServiceProcess]:
        return [p for p in self.processes.values() if not p.alive()]

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()

    def __enter__(self) -> ServiceGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
