"""pytest options for crosscheck.testing.assert_layer_matches (loaded through the
`pytest11` entry point when handrnn is installed, or with `-p crosscheck.pytest_plugin`).

    pytest --crosscheck-cases 200                  # grade with more cases
    pytest --crosscheck-backend torch              # only the torch oracles (repeatable)

They set the defaults of assert_layer_matches calls that leave `cases` or `backends`
out; a test that passes them explicitly keeps its own.
"""

from __future__ import annotations

import pytest

from crosscheck import testing
from crosscheck.oracles import BACKENDS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("crosscheck", "crosscheck: checking a hand-written TimeRNN")
    group.addoption("--crosscheck-cases", type=int, default=None, metavar="N",
                    help="cases per assert_layer_matches call "
                    f"(default {testing.DEFAULT_CASES})")  # fmt: skip
    group.addoption("--crosscheck-backend", action="append", choices=list(BACKENDS), default=None,
                    help="an oracle backend for assert_layer_matches (repeatable; "
                    "default: every installed one)")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    cases = config.getoption("crosscheck_cases")
    if cases is not None and cases < 1:
        raise pytest.UsageError("--crosscheck-cases must be at least 1")
    testing.configure(cases=cases, backends=config.getoption("crosscheck_backend"))


def pytest_unconfigure(config: pytest.Config) -> None:
    testing.configure()
