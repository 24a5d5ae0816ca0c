"""Check the student's TimeRNN in student_layer.py against the oracles and show the verdict.

Run from this directory:

    python check_student_layer.py              # every installed backend (jax, torch, numeric)
    python check_student_layer.py jax          # only the named backends

It prints the same report as `python -m crosscheck --layer student_layer:TimeRNN`
and exits 0 once the report is shown: it is a demonstration of a failing verdict.
To gate on the result (CI, a grading script), use the CLI or `report.exit_code`:
the CLI exits 1 when the layer is wrong.
"""

from __future__ import annotations

import sys
from pathlib import Path

from crosscheck import verify
from crosscheck.render import render_text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # find student_layer.py from anywhere
from student_layer import TimeRNN


def main(backends: list[str]) -> int:
    report = verify(TimeRNN, cases=20, backends=backends or None)
    print(render_text(report))
    if not report.ok:
        print("\nPictures of the first failing case (error per time step, gradient norms):")
        print("  python -m crosscheck --layer student_layer:TimeRNN --plot plots/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
