"""Read the municipality number registry (docs/municipalities.md) from a CSV file."""

from __future__ import annotations

from pathlib import Path

from services.domain.municipalities import Registry, RegistryError, parse_registry
from services.municipalities import DEFAULT_REGISTRY


def load_registry(path: Path | str = DEFAULT_REGISTRY) -> Registry:
    """The validated registry in `path` (default: the one shipped with the service).

    Raises `RegistryError`, naming the file and line, when the file cannot be used."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read the municipality registry: {exc}") from exc
    return parse_registry(text, source=str(path))
