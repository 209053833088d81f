"""`/metrics`, `/healthz` and `/readyz` for a service, served by FastStream's own ASGI
application (uvicorn underneath) when the service has a metrics port.

- `/metrics`: the process's registry, written by prometheus_client (never by hand).
- `/healthz`: 200 while the process's event loop answers; a failing liveness probe should
  mean "restart me", and a broker or database outage is not cured by a restart.
- `/readyz`: 200 when the service can do its work right now (its own check, e.g. the broker
  answers a ping and the database pool is open), 503 otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

import uvicorn
from faststream import FastStream
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, make_asgi_app

log = logging.getLogger(__name__)
ReadinessCheck = Callable[[], Awaitable[bool]]
Route = tuple[str, ASGIApp]


class ReadinessLog:
    """What the readiness probe says in the log: a line when it starts failing or fails for
    another reason, and one when it answers again. A probe (Kubernetes') asks every few
    seconds, and a line at each, during an outage the services already tell once, buried
    what the log is for."""

    def __init__(self) -> None:
        self._failing: str | None = None

    def failed(self, exc: BaseException) -> None:
        cause = f"{type(exc).__name__}: {exc}"
        if cause != self._failing:
            log.warning("not ready: %s", cause)
        else:
            log.debug("still not ready: %s", cause)
        self._failing = cause

    def answered(self) -> None:
        if self._failing is not None:
            log.info("ready again")
        self._failing = None


def routes(registry: CollectorRegistry, ready: ReadinessCheck, extra: Sequence[Route] = ()) -> list[Route]:
    said = ReadinessLog()

    @get(include_in_schema=False)
    async def healthz(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"ok\n", 200)

    @get(include_in_schema=False)
    async def readyz(scope: Scope) -> AsgiResponse:
        try:
            is_ready = await ready()
        except Exception as exc:
            said.failed(exc)  # a line, not a traceback
            is_ready = False
        else:
            said.answered()
        return AsgiResponse(b"ready\n", 200) if is_ready else AsgiResponse(b"not ready\n", 503)

    return [
        ("/metrics", make_asgi_app(registry)),
        ("/healthz", healthz),
        ("/readyz", readyz),
        *extra,
    ]


async def serve(app: FastStream, host: str, port: int | None, http_routes: Sequence[Route]) -> None:
    """Run the app; with a port, behind its HTTP endpoints. Without one, exactly as before:
    no listening socket nobody asked for.

    A start that fails (the database or the broker away) raises its error, for the `run`
    command to say in a line and exit 2, and leaves nothing open behind it. With a port,
    the app is started before the endpoints are served, not by FastStream's ASGI lifespan:
    that one reports the start complete before the broker has connected, so a broker away
    at start-up left a process serving `/healthz` 200 for ever with nothing consuming, which
    no supervisor restarts; and a database away ended in uvicorn's traceback and exit 3.
    """
    if port is None:
        started = asyncio.Event()
        app.after_startup(started.set)
        try:
            await app.run()
        except Exception:
            if not started.is_set():
                await _close_a_failed_start(app)
            raise
        return
    # The port first: one that is taken is said in a line before anything is started (uvicorn
    # found it only after the start, and ended in exit 3).
    listening = _listening(host, port)
    # Made before the start: FastStream's ASGI app configures the broker it shares, and once
    # its subscribers run, a new configuration leaves their handlers without their context.
    endpoints = app.as_asgi(asgi_routes=list(http_routes))
    log.info("starting")
    try:
        await app.start()
    except BaseException:
        listening.close()
        await _close_a_failed_start(app)
        raise
    log.info("started; metrics and health on http://%s:%d/metrics", host, port)
    asgi = _StopsOnShutdown(app, endpoints)
    config = uvicorn.Config(asgi, access_log=False, log_level=logging.WARNING, lifespan="on")
    await uvicorn.Server(config).serve(sockets=[listening])


class CannotListen(OSError):
    """The metrics port cannot be listened on (taken, or an address not this machine's)."""


def _listening(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise CannotListen(f"cannot listen on {host}:{port} (METRICS_PORT): {exc.strerror or exc}") from exc
    return listening


async def _close_a_failed_start(app: FastStream) -> None:
    """Close what a start that failed half way had opened (the broker's producer when its
    consumers could not connect, the database pool when the broker was away): the process
    then ends with its one line, not with clients complaining they were left open."""
    try:
        await app.stop()
    except Exception as exc:  # the error that matters is the start's, raised by the caller
        log.warning("closing after a failed start: %s: %s", type(exc).__name__, exc)


class _StopsOnShutdown:
    """The app's endpoints, and uvicorn's lifespan: the app is already running when the
    server starts, and is stopped when the server shuts down (on SIGTERM or SIGINT). Uvicorn
    re-raises a signal it handled once it has shut down, so the app must be stopped within
    the server's shutdown, not after it."""

    def __init__(self, app: FastStream, endpoints: ASGIApp) -> None:
        self._app = app
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self._endpoints(scope, receive, send)
            return
        await receive()  # lifespan.startup: the app started before the server
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        log.info("stopping")
        try:
            await self._app.stop()
        except Exception as exc:
            log.exception("stopping failed")
            await send({"type": "lifespan.shutdown.failed", "message": f"{type(exc).__name__}: {exc}"})
        else:
            log.info("stopped")
            await send({"type": "lifespan.shutdown.complete"})
