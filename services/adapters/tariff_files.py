"""Load every `*.toml` tariff file of a directory into one validated tariff book."""

from __future__ import annotations

import tomllib
from pathlib import Path

from services.domain.tariffs import TariffBook, TariffError, parse_rules


def load_tariffs(directory: Path) -> TariffBook:
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise TariffError(f"no tariff files (*.toml) in {directory}")
    rules: list[object] = []
    for path in files:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise TariffError(f"{path}: {exc}") from exc
        rules.extend(document.get("rule", []))
    return parse_rules({"rule": rules})
