"""`settlement verify`, `settlement reconcile`, `settlement dispute` and `settlement republish`:
for finance people who must trust every krone, be able to dispute it and get every statement."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts.v1 import topics
from contracts.v1.identifiers import (
    find_patient_ids,
    is_valid_organisation_number,
    is_well_formed_municipality_number,
)
from contracts.v1.outbound import Category, OpenDispute, Party, PartyRole, ResolveDispute
from services.adapters import outbox
from services.adapters.stores import connect_database
from services.cli.kafka_tools import read_published, send_command
from services.cli.options import DEFAULT_DATA_DIR, DataDir, located, parse_month
from services.domain.calendar import Month
from services.domain.money import format_nok, nok_to_ore
from services.runtime.environment import Endpoints, find_kafka
from services.settlement.reconciliation import reconcile
from services.settlement.verification import compare, read_stored, verify_published

console = Console()


async def _verify(endpoints: Endpoints, municipality: str, health_trust: str) -> list[str]:
    conn = await connect_database(endpoints.database_url)
    try:
        series = await read_stored(conn, municipality, health_trust)
    finally:
        await conn.close()
    # Each statement as it was published, not as our model writes it again: the hash is over
    # what was sent, and a statement issued before a field was added to the contract gains
    # it (`"items_now":null`) when written out by today's model.
    messages = [json.loads(raw) for _, raw in await read_published(endpoints.kafka)]
    published, topic_problems = verify_published(messages, municipality, health_trust)
    pair_messages = [
        m for m in messages if {m["recipient"]["id"], m["counterparty"]["id"]} == {municipality, health_trust}
    ]
    console.print(f"database: {series.count} statements; topic {topics.SETTLEMENTS}: {published} per party")
    if not series.count and not published:
        # A ✓ over nothing proves nothing: a mistyped pair must not pass for a verified one.
        why = (
            "; ".join(_malformed(municipality, health_trust))
            or "is a number mistyped, or no month closed yet?"
        )
        return [
            f"no statement of {municipality} / {health_trust}, stored or published: nothing to verify; {why}"
        ]
    return (
        [f"database: {p}" for p in series.problems]
        + [f"topic: {p}" for p in topic_problems]
        + compare(series.bodies, pair_messages)
    )


def verify(endpoints: Endpoints, municipality: str, health_trust: str) -> None:
    problems = asyncio.run(_verify(endpoints, municipality, health_trust))
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/red] {escape(problem)}")
        raise typer.Exit(1)
    console.print(
        f"[green]✓[/green] the chain of statements for {escape(municipality)} / {escape(health_trust)} "
        "is complete and unaltered"
    )


def _malformed(municipality: str, health_trust: str) -> list[str]:
    problems = []
    if not is_well_formed_municipality_number(municipality):
        problems.append(f"{municipality} is not a municipality number (4 digits, county 01-99)")
    if not is_valid_organisation_number(health_trust):
        problems.append(f"{health_trust} is not an organisation number (9 digits, mod-11 check digit)")
    return problems


def _mark(proven: bool) -> str:
    return "[green]✓[/green]" if proven else "[red]✗[/red]"


def _amount(item: dict[str, Any]) -> str:
    """An item's amount, or why it has none, in the statements' words (render._nok): a
    not-payable item owes nothing; only an unrated one (no tariff) is held."""
    if item["amount_ore"] is not None:
        return format_nok(item["amount_ore"])
    return "none owed" if item["not_payable_reason"] is not None else "held: unrated, no tariff"


async def _reconcile(endpoints: Endpoints, municipality: str, health_trust: str, period: Month) -> bool:
    conn = await connect_database(endpoints.database_url)
    try:
        await conn.set_type_codec("json", encoder=str, decoder=json.loads, schema="pg_catalog")
        r = await reconcile(conn, municipality, health_trust, period.first_day)
    finally:
        await conn.close()
    if not r.known:
        # A ✓ over nothing proves nothing: a mistyped pair must not pass for a reconciled one.
        why = "; ".join(_malformed(municipality, health_trust)) or "is a number mistyped?"
        console.print(
            f"[red]✗[/red] nothing is known of {escape(municipality)} / {escape(health_trust)}: no events, "
            f"ledger items, adjustments or statements; {escape(why)}"
        )
        return False
    console.print(
        f"[bold]{escape(municipality)} / {escape(health_trust)}, {period}[/bold]: {r.events} events about "
        f"{r.subjects} episodes, stays and activities; "
        + escape(f"settled on {', '.join(r.settled_on) or 'no statement yet'}")
    )
    items = Table(title="priced items")
    for header in ("category", "id", "days", "payer", "amount", "rule / why", "statement"):
        items.add_column(header)
    for i in r.items:
        items.add_row(
            i["category"],
            escape(i["subject_id"]),
            f"{i['first_day']}..{i['last_day']} ({i['quantity']})",
            i["payer_role"],
            _amount(i),
            escape(i["rule_id"] or i["not_payable_reason"] or "unrated: no tariff"),
            str(i["statement_id"] or "pending"),
        )
    console.print(items)
    adjustments = Table(title="adjustments since")
    for header in ("id", "quantity", "amount", "payer", "cause", "statement"):
        adjustments.add_column(header)
    for a in r.adjustments:
        cause = a["cause"] + (
            f" {a['caused_by_source']}/{a['caused_by_event_id']}" if a["caused_by_source"] else ""
        )
        adjustments.add_row(
            escape(a["subject_id"]),
            f"{a['quantity_delta']:+d}",
            format_nok(a["amount_delta_ore"]),
            a["payer_role"],
            escape(cause),
            str(a["statement_id"] or "pending: next statement"),
        )
    console.print(adjustments)
    for d in r.disputes:
        console.print(
            escape(
                f"dispute {d['dispute_id']}: {d['status']}, {format_nok(d['amount_ore'])} "
                f"by {d['opened_by']}: {d['reason']}"
            )
        )
    direction = "municipality pays" if r.priced_now_ore >= 0 else "trust pays"
    console.print(
        f"balance for {period}: {format_nok(abs(r.priced_now_ore))} ({direction}), items and adjustments"
    )
    # The proof is of the month asked for; the pair's statements together are said apart,
    # so that neither is read for the other.
    if not r.statements:
        console.print(
            f"[red]✗[/red] {period} is not closed: no statement settles it yet, nothing to prove"
            if not r.closed
            else f"[red]✗[/red] no statement of the pair carries {period}: nothing of it was settled, "
            "nothing to prove"
        )
        return False
    count = f"{len(r.statements)} statement{'s' if len(r.statements) > 1 else ''}"
    console.print(
        f"{_mark(r.statements_total_ore == r.ledger_total_ore)} {period} on {count} "
        f"({', '.join(r.statements)}): lines and adjustments "
        f"for {period} sum to {format_nok(r.statements_total_ore)}; settled items of {period} and "
        f"adjustments to it sum to {format_nok(r.ledger_total_ore)}"
    )
    if r.credited_beyond:
        console.print(
            f"[red]✗[/red] settled below nothing for {period} (credited more than was ever charged), in øre: "
            + escape("; ".join(r.credited_beyond))
        )
    # By month, not in the order issued: a month closed after later ones comes last.
    first, last = min(r.pair_statements), max(r.pair_statements)
    every = (
        f"all {len(r.pair_statements)} statements of the pair, of {first} to {last}, sum to"
        if len(r.pair_statements) > 1
        else f"the pair's one statement, {first}, sums to"
    )
    console.print(
        f"{_mark(r.pair_proven)} {every} {format_nok(r.pair_statements_total_ore)}; all settled items and "
        f"adjustments of the pair sum to {format_nok(r.pair_ledger_total_ore)}"
    )
    return r.proven


def republish_command(endpoints: Endpoints, period: Month | None, party: str | None) -> None:
    """Queue a closed month's statements (every closed month's, for `None`) to be published
    again; the settlement service's outbox relay sends them."""

    statements, copies = asyncio.run(
        outbox.issue_again(
            endpoints.database_url, topics.SETTLEMENTS, period.first_day if period else None, only_to=party
        )
    )
    of = f"of {period}" if period else "of every closed month"
    whose = f" with {party}" if party else ""
    if not statements:
        console.print(f"no statements {of}{whose}: nothing queued (is the month closed?)")
        raise typer.Exit(1)
    console.print(
        f"queued {_count(copies, 'copy', 'copies')} of {_count(statements, 'statement', 'statements')} "
        f"{of}{whose}, each as first published: the settlement service publishes them on "
        f"{topics.SETTLEMENTS} (a consumer that has a statement_id already drops the copy)"
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def reconcile_command(endpoints: Endpoints, municipality: str, health_trust: str, period: Month) -> None:
    if not asyncio.run(_reconcile(endpoints, municipality, health_trust, period)):
        raise typer.Exit(1)


dispute_app = typer.Typer(no_args_is_help=True, help="Dispute a line or item of a published statement.")


# The dispute commands check every option before anything is sent: a typing error must say
# which option is wrong and what it takes, not end in a traceback or a rejection on the topic.

_EXAMPLE_UUID = "3f2b8c1e-4d5a-4f6b-9c7d-8e9f0a1b2c3d"
# Kroner in ASCII digits with at most two decimals after a point: what `format_nok` writes,
# without the spaces. 15 digits of kroner stay well inside the database's bigint of øre.
_NOK = re.compile(r"[0-9]{1,15}(\.[0-9]{1,2})?")


def _uuid(what: str) -> Callable[[str], uuid.UUID]:
    def parse(text: str) -> uuid.UUID:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise typer.BadParameter(
                f"expected {what}, a UUID such as {_EXAMPLE_UUID}, not {text!r}"
            ) from None

    return parse


def _ore(text: str) -> int:
    """A positive amount in NOK, e.g. 41867.50, as øre."""
    ore = nok_to_ore(Decimal(text)) if _NOK.fullmatch(text) else 0
    if ore <= 0:
        raise typer.BadParameter(
            f"expected an amount in NOK above 0, in digits with at most two decimals after a point "
            f"(e.g. 41867.50), not {text!r}"
        )
    return ore


def _party(text: str) -> Party:
    role, _, number = text.partition(":")
    if role == PartyRole.MUNICIPALITY:
        if not is_well_formed_municipality_number(number):
            raise typer.BadParameter(f"{number!r} is not a kommunenummer (four digits, county 01-99)")
    elif role == PartyRole.HEALTH_TRUST:
        if not is_valid_organisation_number(number):
            raise typer.BadParameter(
                f"{number!r} is not an organisation number (nine digits with a valid check digit)"
            )
    else:
        raise typer.BadParameter(f"expected municipality:NNNN or health_trust:NNNNNNNNN, not {text!r}")
    return Party(role=PartyRole(role), id=number)


def _text(what: str, shortest: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if len(text.strip()) < shortest or len(text) > 2000:
            raise typer.BadParameter(f"expected {what} in {shortest} to 2000 characters, not {text!r}")
        if find_patient_ids(text):  # published on the statements: refused here, and by the service
            raise typer.BadParameter(
                f"{what} holds a patient identifier; name the episode, stay or activity by its id instead"
            )
        return text

    return parse


@dispute_app.command("open")
def open_command(
    statement: Annotated[uuid.UUID, typer.Option(help="The statement id", parser=_uuid("a statement id"))],
    category: Annotated[Category, typer.Option(help="The disputed line's category")],
    month: Annotated[
        Month, typer.Option(help="The disputed line's service month", metavar="<YYYY-MM>", parser=parse_month)
    ],
    amount_ore: Annotated[
        int,
        typer.Option(
            "--amount-nok", help="The amount disputed, NOK, e.g. 41867.50", metavar="<NOK>", parser=_ore
        ),
    ],
    by: Annotated[
        Party,
        typer.Option(
            help="municipality:NNNN or health_trust:NNNNNNNNN", metavar="<role:number>", parser=_party
        ),
    ],
    reason: Annotated[
        str, typer.Option(help="The factual and legal basis", parser=_text("the basis of the claim", 3))
    ],
    item: Annotated[str | None, typer.Option(help="An episode, stay or activity id on the statement")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Open a dispute: the amount is held out of the payer's next net until it is resolved."""
    dispute_id = uuid.uuid4()
    command = OpenDispute(
        type="open_dispute",
        command_id=uuid.uuid4(),
        dispute_id=dispute_id,
        statement_id=statement,
        episode_id=item,
        category=category,
        service_month=str(month),
        amount_ore=amount_ore,
        opened_by=by,
        reason=reason,
    )
    asyncio.run(
        send_command(
            located(find_kafka, data_dir),
            command.model_dump_json().encode(),
            str(dispute_id).encode(),
        )
    )
    console.print(f"dispute {dispute_id} sent; rejections, if any, appear on {topics.REJECTED}")


@dispute_app.command("resolve")
def resolve_command(
    dispute: Annotated[
        uuid.UUID, typer.Argument(help="The dispute id", metavar="DISPUTE", parser=_uuid("a dispute id"))
    ],
    outcome: Annotated[
        Literal["upheld", "partially_upheld", "rejected"],
        typer.Option(help="upheld, partially_upheld or rejected"),
    ],
    by: Annotated[
        str, typer.Option(help="Who records the outcome", parser=_text("who records the outcome", 1))
    ],
    reason: Annotated[str, typer.Option(help="Why", parser=_text("the reason", 3))],
    agreed_ore: Annotated[
        int | None,
        typer.Option(
            "--agreed-nok",
            help="For partially_upheld: the amount found not owed, NOK",
            metavar="<NOK>",
            parser=_ore,
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Record a dispute's outcome: the agreed difference becomes an adjustment on the next statement."""
    if outcome == "partially_upheld" and agreed_ore is None:
        raise typer.BadParameter(
            "partially_upheld needs the amount found not owed", param_hint="'--agreed-nok'"
        )
    if outcome != "partially_upheld" and agreed_ore is not None:
        raise typer.BadParameter(
            f"only for partially_upheld: {outcome} settles the whole amount", param_hint="'--agreed-nok'"
        )
    command = ResolveDispute(
        type="resolve_dispute",
        command_id=uuid.uuid4(),
        dispute_id=dispute,
        outcome=outcome,
        agreed_ore=agreed_ore,
        resolved_by=by,
        reason=reason,
    )
    asyncio.run(
        send_command(
            located(find_kafka, data_dir),
            command.model_dump_json().encode(),
            str(dispute).encode(),
        )
    )
    console.print(f"resolution of {dispute} sent")
