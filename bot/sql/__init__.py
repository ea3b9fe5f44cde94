"""BigQuery SQL definitions shipped with the package (one file per definition)."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def load_sql(name: str) -> str:
    """Text of `bot/sql/<name>.sql` (`name` may include the `.sql` suffix)."""
    filename = name if name.endswith(".sql") else f"{name}.sql"
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
