"""Options the command modules share: where `settlement up` keeps its state, which the
commands run beside it read to find the broker and the database; and how a month is read."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from services.domain.calendar import Month

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="SETTLEMENT_DATA_DIR", help="State of the embedded broker and database."
    ),
]
DEFAULT_DATA_DIR = Path(".settlement")


def parse_month(text: str) -> Month:
    """A YYYY-MM argument or option, refused by typer with the reason when it is not one."""
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


class StatementFormat(StrEnum):
    TABLE = "table"  # for people
    JSON = "json"  # each statement as published, one a line
    CSV = "csv"  # their items, for a spreadsheet or an accounting system
