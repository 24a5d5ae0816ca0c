"""pytest options for crosscheck.testing.assert_layer_matches (loaded through the
`pytest11` entry point when handrnn is installed, or with `-p crosscheck.pytest_plugin`).

    pytest --crosscheck-cases 200                  # grade with more cases
    pytest --crosscheck-backend torch              # only the torch oracles (repeatable)

They set the defaults of assert_layer_matches calls that leave `cases` or `backends`
out; a test that passes them explicitly keeps its own. The plugin is loaded into every
pytest run of an environment that has handrnn, so it imports only the standard library
until a test imports crosscheck.testing.
"""

from __future__ import annotations

import pytest

from crosscheck.backends import BACKENDS
from crosscheck.settings import session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crosscheck", "crosscheck: checking a hand-written recurrent layer")
    group.addoption("--crosscheck-cases", type=int, default=None, metavar="N",
                    help="cases per assert_layer_matches call "
                    "(default: as many as the CLI)")  # fmt: skip
    group.addoption("--crosscheck-backend", action="append", choices=list(BACKENDS), default=None,
                    help="an oracle backend for assert_layer_matches (repeatable; "
                    "default: every installed one)")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    cases = config.getoption("crosscheck_cases")
    if cases is not None and cases < 1:
        raise pytest.UsageError("--crosscheck-cases must be at least 1")
    session.cases = cases
    session.backends = config.getoption("crosscheck_backend")


def pytest_unconfigure(config: pytest.Config) -> None:
    session.cases = session.backends = None
