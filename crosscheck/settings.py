"""Session-wide defaults for assert_layer_matches, set by the pytest plugin (standard
library only, so that the plugin imports nothing heavy into every pytest run)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Session:
    """Defaults for calls that leave `cases` or `backends` out (None: the built-in ones)."""

    cases: int | None = None
    backends: list[str] | None = None


session = Session()
