"""`settlement`: run, demonstrate and operate the settlement service."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from services.adapters.kafka_records import read_any_header_names
from services.cli.options import (
    DEFAULT_DATA_DIR,
    DataDir,
    RegistryFile,
    StatementFormat,
    located,
    parse_month,
    say_error,
)
from services.runtime.topics import MAX_MESSAGE_BYTES, SMALLEST_MAX_MESSAGE_BYTES

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Settlement between municipalities and health trusts.",
)
console = Console()


def _register_dispute_commands() -> None:
    from services.cli.ledger_commands import dispute_app

    app.add_typer(dispute_app, name="dispute")


@app.command()
def demo(
    period: Annotated[str, typer.Option(help="The month to simulate and close (YYYY-MM).")] = "2025-10",
) -> None:
    """Simulate a hospital month, run it through the services, print both parties' statements."""
    from services.cli.demo import DemoFailed, run_demo

    try:
        run_demo(parse_month(period), console)
    except DemoFailed as exc:
        say_error(f"demo failed: {exc}")
        raise typer.Exit(1) from exc


@app.command()
def up(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    metrics_port_base: Annotated[
        int,
        typer.Option(
            envvar="SETTLEMENT_METRICS_PORT_BASE",
            help="Serve the services' /metrics on this port and the next ones (in the order "
            "printed); 0 picks free ports.",
        ),
    ] = 0,
) -> None:
    """Start broker, database (embedded unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set),
    topics, migrations and the services; run until Ctrl-C."""
    from services.runtime.embedded import free_port
    from services.runtime.environment import Environment, prepare, record_runtime
    from services.runtime.lock import DataDirInUse, DataDirLock
    from services.runtime.processes import SERVICES, ServiceGroup

    # One `up` per data dir, taken before anything is started: a second one would share the
    # first one's database and, stopping, stop it and delete its runtime.env. It says so in a
    # line and exits 2, touching nothing.
    try:
        lock = DataDirLock(data_dir).acquire()
    except DataDirInUse as exc:
        say_error(str(exc))
        raise typer.Exit(2) from None

    stop = False
    died = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    # Held until the database is stopped and runtime.env removed; the OS drops it if we die.
    with lock, Environment(data_dir) as endpoints:
        if again := prepare(endpoints):
            console.print(
                f"up: {again} statements of the ledger queued to be published again (a new statement topic)"
            )
        ports = {
            name: metrics_port_base + i if metrics_port_base else free_port()
            for i, name in enumerate(SERVICES)
        }
        service_env = {name: {"METRICS_PORT": str(port)} for name, port in ports.items()}
        with ServiceGroup(endpoints.as_env(), data_dir / "logs", service_env=service_env) as group:
            signal.signal(signal.SIGINT, _stop)
            signal.signal(signal.SIGTERM, _stop)
            record_runtime(data_dir, {"LAGMONITOR_URL": f"http://127.0.0.1:{ports['lagmonitor']}"})
            console.print(
                f"up: broker {endpoints.bootstrap_servers}, database {'embedded' if endpoints.embedded else 'external'}, "
                f"services {', '.join(group.processes)} (logs in {escape(str(data_dir / 'logs'))}). Ctrl-C stops."
            )
            for name, port in ports.items():
                console.print(f"  {name:<11} http://127.0.0.1:{port}/metrics  /healthz  /readyz")
            console.print("  `settlement lag` shows consumer lag and status")
            # The settlement service says it in its log; whoever watches `up` reads this.
            for line in _tariff_cover_warnings():
                console.print(f"[yellow]warning: {escape(line)}[/yellow]")
            while not stop:
                if dead := group.dead():
                    say_error(f"{dead[0].name} exited ({dead[0].returncode()}); see {dead[0].log_path}")
                    died = True
                    break
                time.sleep(0.5)
            console.print("stopping services, then broker and database")
    if died:
        raise typer.Exit(1)  # the rest stopped as on Ctrl-C, but a supervisor must see the failure


def _tariff_cover_warnings() -> list[str]:
    """What the settlement service warns of at start about the national rates its tariff book
    lacks today (services/settlement/tariff_cover.py), from the book the services will load."""
    import os
    from datetime import UTC, datetime

    from services.adapters.tariff_files import load_tariffs, tariff_dirs
    from services.domain.calendar import oslo_day
    from services.domain.tariffs import TariffError
    from services.settlement.tariff_cover import cover_warnings
    from services.tariffs import DEFAULT_TARIFF_DIR

    try:
        book = load_tariffs(*tariff_dirs(os.environ.get("TARIFF_DIR") or DEFAULT_TARIFF_DIR))
    except (TariffError, OSError):
        return []  # the services refuse to start on it, and `up` says which exited
    return cover_warnings(book, oslo_day(datetime.now(UTC)))


@app.command()
def close(
    period: Annotated[str, typer.Argument(help="YYYY-MM, a month that has ended")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Close a month: publish `close_period` on the command topic."""
    from datetime import UTC, datetime

    from services.cli.kafka_tools import send_close
    from services.domain.calendar import oslo_day
    from services.runtime.environment import find_kafka

    month = parse_month(period)
    today = oslo_day(datetime.now(UTC))
    if month.last_day >= today:
        # The service would refuse it (period_not_closable, among the rejections): say so here.
        say_error(f"{month} has not ended yet (today is {today} in Oslo): nothing sent")
        raise typer.Exit(2)
    kafka = located(find_kafka, data_dir)  # the broker alone: a close is the service's to make
    command = asyncio.run(send_close(kafka, str(month)))
    console.print(f"close_period {month} sent (command {command.command_id})")
    # What the command starts is the service's to do: say where its outcome shows.
    console.print(
        f"The settlement service closes {month} once intake has caught up and publishes its statements "
        f"(`settlement statements {month}`); a month closed before is not closed again (`settlement "
        "republish` sends its statements again); a refusal is among `settlement rejections`."
    )


@app.command()
def statements(
    period: Annotated[str, typer.Argument(help="YYYY-MM, the month the statements settle")],
    party: Annotated[
        str | None,
        typer.Option(help="Only the copies addressed to this party: a kommunenummer or organisation number"),
    ] = None,
    output: Annotated[
        StatementFormat,
        typer.Option(
            "--format",
            help="table for people; json: each statement as published, one a line; csv: their items, "
            "adjustments (each followed by the items it leads to) and held disputes, a row each; csv-nb: "
            "the same for a spreadsheet set to Norwegian (semicolons, decimal commas)",
        ),
    ] = StatementFormat.TABLE,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print the statements of a month as published on samhandling.settlements.v1."""
    from services.cli.kafka_tools import read_published
    from services.cli.render import print_statements
    from services.cli.statement_export import NORWEGIAN, RFC_4180, as_json_lines, items_as_csv
    from services.runtime.environment import find_kafka

    kafka = located(find_kafka, data_dir)  # read from the topic, as the parties read them
    month = parse_month(period)
    found = [
        (statement, raw)
        for statement, raw in asyncio.run(read_published(kafka, period=str(month)))
        if party is None or statement.recipient.id == party
    ]
    if output is StatementFormat.JSON:
        sys.stdout.write(as_json_lines(found))
    elif output in (StatementFormat.CSV, StatementFormat.CSV_NB):
        style = NORWEGIAN if output is StatementFormat.CSV_NB else RFC_4180
        sys.stdout.write(items_as_csv([statement for statement, _ in found], style))
    elif not found:
        console.print(f"no statements for {month}{f' to {escape(party)}' if party else ''} on the topic")
    else:
        print_statements(console, [statement for statement, _ in found])


@app.command()
def pending(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    unrated: Annotated[
        bool,
        typer.Option(
            "--unrated",
            help="Also the days held as unrated (no tariff in force), by category and year; reads the whole ledger.",
        ),
    ] = False,
    running: Annotated[
        bool,
        typer.Option(
            "--running",
            help="Also the stays whose end has not arrived (billed by every close), longest running first.",
        ),
    ] = False,
) -> None:
    """Adjustments to closed months waiting for the pair's next statement, and months left open
    before the latest closed one, whose items are on no statement."""
    from datetime import UTC, datetime

    import asyncpg
    from rich.table import Table

    from services.adapters.ledger_repository import running_stays
    from services.adapters.statement_repository import held_unrated, months_left_open
    from services.adapters.stores import connect_database
    from services.domain.calendar import days_through, oslo_day
    from services.domain.money import format_nok
    from services.runtime.environment import find_endpoints

    endpoints = located(find_endpoints, data_dir)

    async def fetch() -> tuple[list[asyncpg.Record], ...]:
        conn = await connect_database(endpoints.database_url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(
                "SELECT * FROM adjustments WHERE statement_id IS NULL ORDER BY id"
            )
            return (
                rows,
                await months_left_open(conn),
                await held_unrated(conn) if unrated else [],
                await running_stays(conn),  # a few hundred nationally: a line without --running
            )
        finally:
            await conn.close()

    adjustments, left_open, held, stays = asyncio.run(fetch())
    table = Table(title="pending adjustments to closed months (on the next statement)")
    for header in ("corrects", "subject", "municipality", "trust", "quantity", "amount", "cause"):
        table.add_column(header)
    for r in adjustments:
        table.add_row(
            str(r["corrects_month"])[:7],
            escape(r["subject_key"]),
            escape(r["municipality"]),
            escape(r["health_trust"]),
            f"{r['quantity_delta']:+d}",
            # NOK as on the statements and in every other command (it was øre alone here)
            ("+" if r["amount_delta_ore"] > 0 else "") + format_nok(r["amount_delta_ore"]),
            escape(
                r["cause"]
                + (f" {r['caused_by_source']} {r['caused_by_event_id']}" if r["caused_by_source"] else "")
            ),
        )
    console.print(table)
    if left_open:
        # Items no statement will carry until their month is closed: never to go unseen.
        months = Table(title="months left open before the latest closed: their items are on no statement")
        for header in ("month", "items", "pairs", "priced", "to settle them"):
            months.add_column(header)
        for r in left_open:
            month = str(r["service_month"])[:7]
            months.add_row(
                month,
                str(r["items"]),
                str(r["pairs"]),
                format_nok(r["amount_ore"]),
                f"settlement close {month}",
            )
        console.print(months)
    if unrated:
        held_table = Table(
            title="held as unrated, no tariff in force for their days: priced by the first close after "
            "the rule is added (docs/tariffs.md), as adjustments for months closed"
        )
        for header in ("category", "year", "items", "quantity", "pairs", "days", "in closed months"):
            held_table.add_column(header)
        for r in held:
            held_table.add_row(
                escape(r["category"]),
                str(r["year"]),
                str(r["items"]),
                str(r["quantity"]),
                str(r["pairs"]),
                f"{r['first_day']} to {r['last_day']}",
                str(r["closed"]),
            )
        console.print(held_table if held else "nothing is held as unrated")
    today = oslo_day(datetime.now(UTC))
    if stays and not running:
        # `pending` is what finance runs: a stay billed for months because its end was lost
        # is worth a line there without the option.
        longest = stays[0]
        console.print(
            f"{len(stays)} stays still running, the longest since {longest['since']} "
            f"({days_through(longest['since'], today)} days, {escape(longest['subject_key'])}): "
            "`settlement pending --running` lists them"
        )
    if running:
        stays_table = Table(
            title=f"stays whose end has not arrived, longest first (days through {today}): a stay "
            "far longer than the rest may be one whose end the hospital never sent"
        )
        for header in (
            "subject",
            "municipality",
            "trust",
            "since",
            "days",
            "rated through",
            "days paid",
            "amount",
        ):
            stays_table.add_column(header)
        for r in stays:
            stays_table.add_row(
                escape(r["subject_key"]),
                escape(r["municipality"]),
                escape(r["health_trust"]),
                str(r["since"]),
                str(days_through(r["since"], today)),
                str(r["rated_through"]),
                str(r["days_paid"]),
                format_nok(r["amount_ore"]),
            )
        console.print(stays_table if stays else "no stay is running")


@app.command()
def rejections(
    reason: Annotated[
        str | None,
        typer.Option(help="Only this reason code (samhandling.rejected.v1), e.g. schema_violation"),
    ] = None,
    topic: Annotated[str | None, typer.Option(help="Only messages of this topic")] = None,
    source: Annotated[
        str | None, typer.Option(help="Only events of this source (their `source` field, as sent)")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this day on (YYYY-MM-DD, Oslo)")] = None,
    limit: Annotated[int, typer.Option(help="How many of the latest to list", min=0)] = 20,
    payload: Annotated[bool, typer.Option("--payload", help="Show each one's payload (redacted)")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Messages refused, counted by topic and reason, and the latest with why."""
    from datetime import date

    from contracts.v1.outbound import ReasonCode
    from services.cli.rejections import RejectionFilter, counts_table, fetch_rejections, latest_table
    from services.runtime.environment import find_endpoints

    try:
        code = ReasonCode(reason) if reason is not None else None
    except ValueError as exc:
        raise typer.BadParameter(
            f"not a reason code: {reason!r}; one of {', '.join(c.value for c in ReasonCode)}",
            param_hint="--reason",
        ) from exc
    try:
        day = date.fromisoformat(since) if since is not None else None
    except ValueError as exc:
        raise typer.BadParameter(f"not a date: {since!r}", param_hint="--since") from exc
    which = RejectionFilter(code, topic, day, source)
    endpoints = located(find_endpoints, data_dir)
    found = asyncio.run(fetch_rejections(endpoints.database_url, which, limit))
    if not found.counts:
        console.print("no rejections" + (" of that kind" if reason or topic or since or source else ""))
    else:
        console.print(counts_table(found, which))
        if found.latest:
            console.print(latest_table(found, payloads=payload))
    if found.before_sources:
        # Rejections recorded before the upgrade have no source column: not "none" for a sender.
        n = found.before_sources
        console.print(
            f"and {n} {'rejection' if n == 1 else 'rejections'} recorded before rejections kept the event's "
            f"source (migration 0014) {'holds' if n == 1 else 'hold'} {escape(repr(source))} in "
            f"{'its' if n == 1 else 'their'} payload: --source does not find them; leave it out "
            "(with --payload) to see them"
        )


@app.command()
def check(
    topic: Annotated[str, typer.Argument(help="The inbound topic the messages are for")],
    files: Annotated[
        list[Path],
        typer.Argument(help="Files of one JSON message each, or JSON Lines with --lines; - reads stdin"),
    ],
    lines: Annotated[bool, typer.Option("--lines", help="Each line of a file is a message")] = False,
    registry: RegistryFile = None,
) -> None:
    """Validate messages as intake would, before sending them: accepted, or the reason code and
    why. Offline: a duplicate_conflict needs the ledger and is not told here. Exit 1 if any
    would be rejected. An accepted id or source with 11 or more digits in a row gets a
    warning line: intake refuses such ids now and then, by chance (the exit code stays)."""
    from datetime import UTC, datetime

    from contracts.v1 import topics
    from services.adapters.municipality_registry import load_registry
    from services.cli.check import check_messages
    from services.domain.municipalities import RegistryError

    if topic not in topics.INBOUND:
        raise typer.BadParameter(f"not an inbound topic: {topic!r}; one of {', '.join(topics.INBOUND)}")

    def messages() -> list[tuple[str, bytes]]:
        found = []
        for path in files:
            raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
            name = "stdin" if str(path) == "-" else str(path)
            if lines:
                found += [(f"{name}:{n}", line) for n, line in enumerate(raw.splitlines(), 1) if line.strip()]
            else:
                found.append((name, raw))
        return found

    try:
        read = messages()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        municipalities = load_registry(registry) if registry else load_registry()
    except RegistryError as exc:
        raise typer.BadParameter(str(exc), param_hint="--registry") from exc
    results = check_messages(topic, read, municipalities, datetime.now(UTC))
    for result in results:
        colour = "green" if result.accepted else "red"
        console.print(f"[{colour}]{escape(result.name)}[/{colour}]: {escape(result.says)}")
        for warning in result.warnings:  # one line each, whatever the width: for grep
            console.print(f"  [yellow]warning[/yellow]: {escape(warning)}", soft_wrap=True)
    rejected = sum(not r.accepted for r in results)
    warned = sum(bool(r.warnings) for r in results)
    console.print(
        f"{len(results) - rejected} accepted, {rejected} rejected"
        + (f"; {warned} with a warning (the exit code does not count them)" if warned else "")
    )
    if rejected:
        raise typer.Exit(1)


@app.command()
def tariffs(
    municipality: Annotated[str, typer.Argument(help="Kommunenummer, e.g. 4601")],
    health_trust: Annotated[str, typer.Argument(help="Organisation number, e.g. 983974724")],
    on: Annotated[
        str | None,
        typer.Option(help="The day (YYYY-MM-DD) of the rules table; default today, and none with --explain"),
    ] = None,
    explain: Annotated[
        str | None, typer.Option(help="An episode, stay or activity id: explain the price of its items")
    ] = None,
    tariff_dir: Annotated[
        str | None, typer.Option(envvar="TARIFF_DIR", help="Tariff directories, separated like PATH")
    ] = None,
    registry: RegistryFile = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show the rules in force for a pair on a day; with --explain, why an item costs what it costs."""
    from datetime import date

    from services.adapters.municipality_registry import load_registry
    from services.adapters.tariff_files import load_tariffs, tariff_dirs
    from services.cli.tariffs import explain_subject, not_a_municipality_note, rules_table, unpriced_note
    from services.domain.municipalities import RegistryError
    from services.domain.tariffs import TariffError, check_municipalities
    from services.runtime.environment import find_endpoints
    from services.tariffs import DEFAULT_TARIFF_DIR

    try:
        # The tariffs the services would refuse to start with are refused here too.
        book = load_tariffs(*tariff_dirs(tariff_dir or DEFAULT_TARIFF_DIR))
        municipalities = load_registry(registry) if registry else load_registry()
        check_municipalities(book, municipalities)
    except (TariffError, RegistryError) as exc:
        say_error(str(exc))
        raise typer.Exit(2) from None
    try:
        day = date.fromisoformat(on) if on else date.today()
    except ValueError as exc:
        raise typer.BadParameter(f"not a date: {on}") from exc
    # Explaining an item of another year, the rules in force today said nothing about it
    # (and today may have no rate at all): each item names its own rules and values.
    if on or not explain:
        if note := not_a_municipality_note(municipalities, municipality, day):
            console.print(f"[yellow]{escape(note)}[/yellow]")
        console.print(rules_table(book, municipality, health_trust, day))
        if note := unpriced_note(book, municipality, health_trust, day):
            console.print(note)
    if explain:
        endpoints = located(find_endpoints, data_dir)
        found = asyncio.run(explain_subject(endpoints.database_url, explain, health_trust, book, console))
        if not found:
            console.print(
                f"no ledger items or adjustments for {escape(explain)} of health trust {health_trust}"
            )
            raise typer.Exit(1)


@app.command()
def lag(
    once: Annotated[bool, typer.Option("--once", help="Print one reading and exit.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON instead of a table (implies --once).")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.2)] = 2.0,
    monitor: Annotated[
        str | None,
        typer.Option(envvar="LAGMONITOR_URL", help="The lag monitor, e.g. http://127.0.0.1:9103."),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Consumer lag of every group and partition, in messages and seconds, with its status;
    a live table until Ctrl-C, or `--once --json` for scripts."""
    from services.cli.lag import run as run_lag
    from services.runtime.environment import runtime_values
    from services.settings import load_lag_monitor_settings

    values = runtime_values(data_dir)
    direct = load_lag_monitor_settings(kafka_bootstrap_servers=values.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    try:
        code = asyncio.run(
            run_lag(
                console,
                monitor_url=monitor or values.get("LAGMONITOR_URL"),
                kafka=direct.kafka() if direct.kafka_bootstrap_servers else None,
                direct={
                    "intake_group_prefix": direct.intake_group_prefix,
                    "settlement_group": direct.settlement_group,
                    "window_seconds": direct.lag_window_seconds,
                },
                once=once or as_json,
                as_json=as_json,
                interval=interval,
            )
        )
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


@app.command()
def verify(
    municipality: Annotated[str, typer.Argument(help="Kommunenummer")],
    health_trust: Annotated[str, typer.Argument(help="Organisation number")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Check a pair's chain of statements, in the database and as published: complete, unaltered."""
    from services.cli.ledger_commands import verify as run_verify
    from services.runtime.environment import find_endpoints

    run_verify(located(find_endpoints, data_dir), municipality, health_trust)


@app.command()
def reconcile(
    municipality: Annotated[str, typer.Argument(help="Kommunenummer")],
    health_trust: Annotated[str, typer.Argument(help="Organisation number")],
    period: Annotated[str, typer.Argument(help="YYYY-MM")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """From events to balance for a pair and month, and proof that its statements add up."""
    from services.cli.ledger_commands import reconcile_command
    from services.runtime.environment import find_endpoints

    reconcile_command(located(find_endpoints, data_dir), municipality, health_trust, parse_month(period))


@app.command()
def republish(
    period: Annotated[
        str | None, typer.Argument(help="YYYY-MM, a closed month; every closed month if none")
    ] = None,
    party: Annotated[
        str | None,
        typer.Option(help="Only the copies addressed to this party: a kommunenummer or organisation number"),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Publish a closed month's statements again, byte for byte as issued: for a party whose
    consumer lost them, or a topic that did (every month's, with no month given, as for a
    statement topic made anew). The settlement service's relay sends them."""
    from services.cli.ledger_commands import republish_command
    from services.runtime.environment import find_endpoints

    republish_command(located(find_endpoints, data_dir), parse_month(period) if period else None, party)


def _setting_option(name: str, what: str) -> Any:
    """An option read from the variable `name` and, when neither is given, from its file in
    SECRETS_DIR (`_setting`)."""
    return typer.Option(envvar=name, show_envvar=True, help=f"{what} (else `{name.lower()}` in SECRETS_DIR).")


@app.command()
def migrate(
    database_url: Annotated[str | None, _setting_option("DATABASE_URL", "The PostgreSQL to migrate")] = None,
) -> None:
    """Apply the database migrations to DATABASE_URL."""
    from services.adapters.migrations import upgrade

    upgrade(_setting(database_url, "DATABASE_URL"))
    console.print("database at the newest revision")


def _setting(given: str | None, name: str) -> str:
    """An option given (or its variable), else the setting's file in SECRETS_DIR, as the
    services read it; neither: said in a line, exit 2."""
    from services.runtime.environment import configured

    value = given or configured(name)
    if not value:
        say_error(f"{name} not set (nor a {name.lower()} file in SECRETS_DIR)")
        raise typer.Exit(2)
    return value


@app.command("create-topics")
def create_topics(
    bootstrap_servers: Annotated[
        str | None, _setting_option("KAFKA_BOOTSTRAP_SERVERS", "The broker, host:port[,host:port]")
    ] = None,
    max_message_bytes: Annotated[
        int,
        typer.Option(
            envvar="KAFKA_MAX_MESSAGE_BYTES",
            # The services' own floor (Settings.kafka_max_message_bytes): the topic and the
            # producers must agree on the limit.
            min=SMALLEST_MAX_MESSAGE_BYTES,
            help="The largest message the services send, in bytes (as the services read it).",
        ),
    ] = MAX_MESSAGE_BYTES,
    replication_factor: Annotated[
        int | None,
        typer.Option(
            envvar="KAFKA_REPLICATION_FACTOR",
            min=1,
            help="Copies of each partition (default: 3 with min.insync.replicas 2 on a cluster of "
            "three brokers or more, else one per broker)",
        ),
    ] = None,
) -> None:
    """Create the contract's topics on KAFKA_BOOTSTRAP_SERVERS (with the services' TLS and
    SASL settings), replicated for the cluster; the statement topic takes messages up to
    KAFKA_MAX_MESSAGE_BYTES, as the services send them (docs/operations.md)."""
    from contracts.v1 import topics
    from services.runtime.topics import ensure_topics
    from services.settings import load_kafka_security

    kafka = load_kafka_security().connection(_setting(bootstrap_servers, "KAFKA_BOOTSTRAP_SERVERS"))
    created = asyncio.run(
        ensure_topics(kafka, max_message_bytes=max_message_bytes, replication_factor=replication_factor)
    )
    if not created.names:
        # An existing topic keeps its configuration: say so rather than a limit not applied.
        console.print("topics exist already; none created, none changed")
    else:
        console.print(f"created {', '.join(created.names)}, replication factor {created.replication_factor}")
        if topics.SETTLEMENTS in created.names:
            console.print(f"{topics.SETTLEMENTS}: max.message.bytes {max_message_bytes}, kept for good")


@app.command()
def run(service: Annotated[str, typer.Argument(help="intake, settlement or lagmonitor")]) -> None:
    """Run one service in this process (for containers)."""
    from services.runtime.processes import SERVICES

    if service not in SERVICES:
        raise typer.BadParameter(f"one of {', '.join(SERVICES)}")
    import importlib
    import logging

    # `main` keeps the clients' own lines out of the commands' output; a service's log is
    # where they belong (a broker refusing a login says why only there).
    logging.getLogger("aiokafka").propagate = True

    try:
        importlib.import_module(SERVICES[service]).main()
    except Exception as exc:
        # A service that cannot start (docs/runbook.md, ServiceDown) says why in a line and
        # exits 2, for its supervisor to start it again; once running, an outage is waited out.
        if (lines := _refusal(exc)) is None:
            raise
        for line in lines:
            say_error(f"{service}: {line}")
        raise typer.Exit(2) from None


def _refusal(exc: BaseException) -> list[str] | None:
    """What to say, a line each, of an error that stops a command or a service before it
    does anything: a store away, a setting, reference file or port it cannot use. None for
    any other error, which keeps its traceback. Settings are named as the environment
    variable, with what is wrong: words an operator acts on, not a page of traceback in a
    crash-looping container's log."""
    from aiokafka.errors import KafkaConnectionError
    from pydantic import ValidationError

    from services.adapters.stores import DatabaseUrlUnusable, Unreachable
    from services.domain.municipalities import RegistryError
    from services.domain.tariffs import TariffError
    from services.observability.http import CannotListen
    from services.settings import KafkaSecurityUnusable

    if isinstance(exc, Unreachable):
        return [f"could not reach {exc}"]
    if isinstance(exc, KafkaConnectionError):  # FastStream's own clients, not ours
        return [f"could not reach the broker: {exc}"]
    if isinstance(exc, DatabaseUrlUnusable):
        return [f"DATABASE_URL: {exc}"]
    if isinstance(exc, TariffError):
        return [f"TARIFF_DIR: {exc}"]
    if isinstance(exc, RegistryError):
        return [f"MUNICIPALITY_REGISTRY: {exc}"]
    if isinstance(exc, KafkaSecurityUnusable | CannotListen):
        return [str(exc)]
    if isinstance(exc, ValidationError) and exc.title.endswith("Settings"):
        lines = []
        for error in exc.errors(include_url=False, include_input=False):
            name = "_".join(map(str, error["loc"])).upper()
            where = f"{name}: " if name else ""  # a check across variables names them in its message
            message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
            lines.append(f"{where}{message}")
        return lines
    return None


_register_dispute_commands()


def main() -> None:
    """The `settlement` command: the app, with a store it cannot reach said in one line."""
    import logging

    from pydantic import ValidationError

    # The clients' own log lines (aiokafka's "Unable connect to ...") would only repeat, in
    # their words, what the command says itself; the services log theirs as they run.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    logging.getLogger("aiokafka").propagate = False
    # Every consumer of the commands and of `run` (the lag monitor's, the close's wait for
    # intake) reads records whatever their header names, as the services' brokers do.
    read_any_header_names()
    try:
        app()
    except Exception as exc:
        if (lines := _refusal(exc)) is None:
            raise
        # TLS or SASL settings a command read are named as whose (a service's are `run`'s)
        who = "settlement: " if isinstance(exc, ValidationError) else ""
        for line in lines:
            say_error(f"{who}{line}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
