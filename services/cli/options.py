"""Options the command modules share: where `settlement up` keeps its state, which the
commands run beside it read to find the broker and the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir", envvar="SETTLEMENT_DATA_DIR", help="State of the embedded broker and database."
    ),
]
DEFAULT_DATA_DIR = Path(".settlement")
