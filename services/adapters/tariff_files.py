"""Load every `*.toml` tariff file of one or more directories into one validated book."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from services.domain.tariffs import TariffBook, TariffError, parse_rules


def tariff_dirs(setting: str | Path) -> list[Path]:
    """`TARIFF_DIR` may name several directories, separated like PATH (`:` on Linux)."""
    return [Path(part) for part in str(setting).split(os.pathsep) if part]


def load_tariffs(*directories: Path) -> TariffBook:
    files = sorted(f for directory in directories for f in directory.glob("*.toml"))
    if not files:
        raise TariffError(f"no tariff files (*.toml) in {', '.join(map(str, directories))}")
    rules: list[object] = []
    for path in files:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise TariffError(f"{path}: {exc}") from exc
        rules.extend(document.get("rule", []))
    return parse_rules({"rule": rules})
