"""`/metrics`, `/healthz` and `/readyz` for a service, served by FastStream's own ASGI
application (uvicorn underneath) when the service has a metrics port.

- `/metrics`: the process's registry, written by prometheus_client (never by hand).
- `/healthz`: 200 while the process's event loop answers; a failing liveness probe should
  mean "restart me", and a broker or database outage is not cured by a restart.
- `/readyz`: 200 when the service can do its work right now (its own check, e.g. the broker
  answers a ping and the database pool is open), 503 otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faststream import FastStream
from faststream.asgi import AsgiResponse, get
from faststream.asgi.types import ASGIApp, Scope
from prometheus_client import CollectorRegistry, make_asgi_app

log = logging.getLogger(__name__)
ReadinessCheck = Callable[[], Awaitable[bool]]
Route = tuple[str, ASGIApp]


def routes(registry: CollectorRegistry, ready: ReadinessCheck, extra: Sequence[Route] = ()) -> list[Route]:
    @get(include_in_schema=False)
    async def healthz(scope: Scope) -> AsgiResponse:
        return AsgiResponse(b"ok\n", 200)

    @get(include_in_schema=False)
    async def readyz(scope: Scope) -> AsgiResponse:
        try:
            is_ready = await ready()
        except Exception as exc:
            # One line per probe: during an outage the probe fails every few seconds, and a
            # traceback each time buries what the log is for.
            log.warning("not ready: %s: %s", type(exc).__name__, exc)
            is_ready = False
        return AsgiResponse(b"ready\n", 200) if is_ready else AsgiResponse(b"not ready\n", 503)

    return [
        ("/metrics", make_asgi_app(registry)),
        ("/healthz", healthz),
        ("/readyz", readyz),
        *extra,
    ]


async def serve(app: FastStream, host: str, port: int | None, http_routes: Sequence[Route]) -> None:
    """Run the app; with a port, behind its HTTP endpoints. Without one, exactly as before:
    no listening socket nobody asked for."""
    if port is None:
        await app.run()
        return
    log.info("metrics and health on http://%s:%d/metrics", host, port)
    options: dict[str, Any] = {"host": host, "port": port, "access_log": "false"}
    await app.as_asgi(asgi_routes=list(http_routes)).run(logging.WARNING, options)
