"""crosscheck: prove a hand-written TimeRNN against JAX, PyTorch and finite differences.

    from crosscheck import verify
    report = verify(MyTimeRNN, cases=100)   # MyTimeRNN(Wx, Wh, b, stateful=...)
    assert report.ok, report.failures

No framework is imported until a backend is asked for.
"""

from crosscheck.cases import Case, Segment, generate_cases, parse_case
from crosscheck.report import Failure, Report
from crosscheck.verification import verify

__all__ = ["Case", "Failure", "Report", "Segment", "generate_cases", "parse_case", "verify"]
