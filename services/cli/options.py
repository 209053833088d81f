"""Options the command modules share: where `settlement up` keeps its state, which the
commands run beside it read to find the broker and the database (`located`); how a month
is read; how statements are printed."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from services.domain.calendar import Month

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="SETTLEMENT_DATA_DIR",
        help="State of `settlement up`: its embedded database, key, logs (the broker keeps nothing).",
    ),
]
DEFAULT_DATA_DIR = Path(".settlement")
RegistryFile = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        envvar="MUNICIPALITY_REGISTRY",
        help="The municipality registry the services use (default: shipped)",
    ),
]

Found = TypeVar("Found")

# Why a command or a service refuses to go on: on standard error, so that what a command
# prints for a file or a pipe (`statements --format csv > month.csv`) never carries it, and
# in one line however narrow the terminal, or however wide no terminal at all is (a
# container's log, where rich would otherwise wrap at 80 columns).
errors = Console(stderr=True, soft_wrap=True)


def say_error(text: str) -> None:
    """`text` (plain, not markup) in red on standard error, in one line."""
    errors.print(f"[red]{escape(text)}[/red]")


def located(find: Callable[[Path], Found], data_dir: Path) -> Found:
    """The broker and database a command needs (`find`: from the environment, then a running
    `settlement up`'s data dir), or, when neither says, why, in one line and exit 2."""
    try:
        return find(data_dir)
    except LookupError as exc:
        say_error(str(exc))
        raise typer.Exit(2) from exc


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
    CSV_NB = "csv-nb"  # the same for a spreadsheet set to Norwegian: semicolons, decimal commas
