"""The lag-monitor process: polls the project's consumer groups, exports lag and status as
Prometheus metrics, serves the current report on `/lag` for `settlement lag`.

It is a FastStream app like the other services for one lifecycle and one set of HTTP
endpoints; its broker has no subscribers and is there for `/readyz` (the broker answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from faststream import FastStream
from faststream.asgi import AsgiResponse, get
from faststream.asgi.response import JSONResponse
from faststream.asgi.types import Scope
from faststream.kafka import KafkaBroker

from services.bootstrap import configure_logging
from services.lagmonitor.domain import Thresholds
from services.lagmonitor.kafka_offsets import KafkaOffsets
from services.lagmonitor.service import LagMonitor, project_groups, report_json
from services.observability import http
from services.observability.metrics import LagMetrics, new_registry
from services.settings import LagMonitorSettings, load_lag_monitor_settings

log = logging.getLogger("services.lagmonitor")


def create_service(settings: LagMonitorSettings | None = None) -> tuple[FastStream, list[http.Route]]:
    settings = settings or load_lag_monitor_settings()
    kafka = settings.kafka()
    broker = KafkaBroker(
        kafka.bootstrap_servers, security=kafka.security, client_id="samhandling-lagmonitor", logger=log
    )
    app = FastStream(broker, logger=log)
    registry = new_registry()
    metrics = LagMetrics(registry)
    groups = project_groups(
        intake_group_prefix=settings.intake_group_prefix, settlement_group=settings.settlement_group
    )
    offsets = KafkaOffsets(kafka, groups)
    monitor = LagMonitor(
        offsets,
        Thresholds(window_seconds=settings.lag_window_seconds),
        on_reports=lambda reports, seconds: metrics.update(reports, monitor.last_poll_at or 0.0, seconds),
    )
    state: dict[str, Any] = {}

    @app.on_startup
    async def start_reading() -> None:
        await offsets.start()
        log.info("watching %s every %ss", ", ".join(groups), settings.lag_poll_seconds)

    @app.after_startup
    async def start_polling() -> None:
        state["stop"] = stop = asyncio.Event()
        state["task"] = asyncio.create_task(monitor.run(stop, settings.lag_poll_seconds, metrics.poll_failed))

    @app.on_shutdown
    async def stop_polling() -> None:
        if "stop" in state:
            state["stop"].set()
            # A poll the broker does not answer would hold the stop up to its timeout: cancelled.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state["task"], timeout=5)
        await offsets.stop()

    async def ready() -> bool:
        return monitor.fresh(settings.lag_poll_seconds)

    @get(include_in_schema=False)
    async def lag(scope: Scope) -> AsgiResponse:
        return JSONResponse(
            report_json(
                monitor.reports,
                source="lagmonitor",
                at=monitor.last_poll_at,
                fresh=monitor.fresh(settings.lag_poll_seconds),
            )
        )

    return app, http.routes(registry, ready, [("/lag", lag)])


def main() -> None:
    configure_logging("lagmonitor")
    settings = load_lag_monitor_settings()
    app, routes = create_service(settings)
    asyncio.run(http.serve(app, settings.metrics_host, settings.metrics_port, routes))


if __name__ == "__main__":
    main()
