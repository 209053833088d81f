"""The municipality number registry shipped with the service (package data).

`registry.csv` lists every Norwegian municipality number in force at some time since
2012-01-01 with its validity period and, once retired, the numbers that took over. Its
format, source (Statistics Norway, KLASS 131, NLOD) and update procedure are in
docs/municipalities.md; `services.adapters.municipality_registry.load_registry` reads it.
"""

from pathlib import Path

DEFAULT_REGISTRY = Path(__file__).parent / "registry.csv"
