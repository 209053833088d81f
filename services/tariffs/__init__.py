"""Tariff data shipped with the services; `TARIFF_DIR` points at an operator's own copy."""

from pathlib import Path

DEFAULT_TARIFF_DIR = Path(__file__).parent
EXAMPLE_TARIFF_DIR = DEFAULT_TARIFF_DIR / "examples"
