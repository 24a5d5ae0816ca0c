"""crosscheck: prove a hand-written TimeRNN against JAX, PyTorch and finite differences.

    from crosscheck import verify
    report = verify(MyTimeRNN, cases=100)   # MyTimeRNN(Wx, Wh, b, stateful=...)
    assert report.ok, report.failures

The layer runs in worker processes and every framework in an oracle process of its
own: importing crosscheck imports no framework, and nothing here imports the layer.
Names are loaded on first use, so that a worker or a pytest plugin importing one
submodule does not pay for the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crosscheck.cases import Case as Case
    from crosscheck.cases import Segment as Segment
    from crosscheck.cases import generate_cases as generate_cases
    from crosscheck.cases import parse_case as parse_case
    from crosscheck.report import Failure as Failure
    from crosscheck.report import Report as Report
    from crosscheck.verification import verify as verify

_WHERE = {
    "Case": "crosscheck.cases",
    "Segment": "crosscheck.cases",
    "generate_cases": "crosscheck.cases",
    "parse_case": "crosscheck.cases",
    "Failure": "crosscheck.report",
    "Report": "crosscheck.report",
    "verify": "crosscheck.verification",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'crosscheck' has no attribute {name!r}")
