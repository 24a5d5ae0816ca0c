"""Soak: many random cases of several correct layers written differently, through crosscheck.

    python benchmarks/soak.py --cases 100000 --seed 777 --dtype float32 --backend torch
    python benchmarks/soak.py --kind lstm --cases 10000      # the LSTM's layers (or gru)

Each chunk of cases is judged for every layer in turn (the references, computed once per
chunk, are shared through crosscheck's cache), exactly as `python -m crosscheck` would:
layers in worker processes, the tolerance of crosscheck.compare. It prints, per layer and
quantity, the largest error as a fraction of its threshold and the number of failing
cases, as a markdown table (and writes it to --out). Every layer here is correct, so any
failure is a false alarm of the tolerance model. Seeds 0, 2026 and 4242 were used to
calibrate it: soak with others.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.catalog.*

from crosscheck.cases import DTYPES, iter_cases  # noqa: E402
from crosscheck.quantities import quantities_for  # noqa: E402
from crosscheck.verification import verify  # noqa: E402

# Per layer kind, correct layers written differently (tests/catalog*/ and handrnn).
LAYERS = {
    "rnn": {
        "book (per-step cells, dtype='f')": "tests.catalog.book_original:TimeRNN",
        "hoisted products": "tests.catalog.correct_vectorized:TimeRNN",
        "einsum, accumulated": "tests.catalog.correct_step_accumulate:TimeRNN",
        "time-major": "tests.catalog.correct_time_major:TimeRNN",
        "float64 inside": "tests.catalog.correct_float64_internal:TimeRNN",
        "handrnn": "handrnn:TimeRNN",
    },
    "lstm": {
        "book (per-step cells, dtype='f')": "tests.catalog_gated.book_time_lstm:TimeLSTM",
        "book, params' dtype": "tests.catalog_gated.correct_book_dtype_lstm:TimeLSTM",
        "fused gates, dc kept": "tests.catalog_gated.correct_fused_lstm:TimeLSTM",
        "time-major, tensordot": "tests.catalog_gated.correct_time_major_lstm:TimeLSTM",
        "float64 inside": "tests.catalog_gated.correct_float64_internal_lstm:TimeLSTM",
        "handrnn": "handrnn:TimeLSTM",
    },
    "gru": {
        "book (per-step cells, dtype='f')": "tests.catalog_gated.book_time_gru:TimeGRU",
        "book, params' dtype": "tests.catalog_gated.correct_book_dtype_gru:TimeGRU",
        "fused z and r": "tests.catalog_gated.correct_fused_gru:TimeGRU",
        "time-major, einsum": "tests.catalog_gated.correct_einsum_gru:TimeGRU",
        "float64 inside": "tests.catalog_gated.correct_float64_internal_gru:TimeGRU",
        "handrnn": "handrnn:TimeGRU",
    },
}
CHUNK = 500


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=777)
    p.add_argument("--dtype", action="append", choices=DTYPES, help="default: both")
    p.add_argument("--backend", action="append", help="default: every installed one")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--kind", choices=list(LAYERS), default="rnn", help="layer kind (default rnn)")
    p.add_argument("--layer", action="append", help="a layer name of the kind; default: all")
    p.add_argument("--out", type=Path, help="also write the table here")
    args = p.parse_args(argv)
    kinds = LAYERS[args.kind]
    unknown = set(args.layer or ()) - set(kinds)
    if unknown:
        p.error(f"no {args.kind} layer {sorted(unknown)}: choose from {sorted(kinds)}")
    layers = {name: kinds[name] for name in (args.layer or kinds)}
    quantities = quantities_for(args.kind)

    worst: dict[tuple[str, str], tuple[float, float, float, str]] = {}
    failing: Counter[str] = Counter()
    failing_ids: defaultdict[str, list[str]] = defaultdict(list)
    done, start = 0, time.perf_counter()
    cases = iter_cases(args.cases, args.seed, args.dtype or DTYPES, args.kind)
    while chunk := [c for _, c in zip(range(CHUNK), cases)]:
        for name, spec in layers.items():
            r = verify(spec, cases=chunk, backends=args.backend, jobs=args.jobs, explain=False)
            failing[name] += r.failing_count
            failing_ids[name] += r.failing_case_ids[:5]
            for (_, q), cell in r.cells.items():
                best = worst.get((name, q))
                if best is None or cell.ratio > best[0]:
                    worst[(name, q)] = (cell.ratio, cell.error, cell.threshold, cell.case_id)
        done += len(chunk)
        print(f"{done} cases, {time.perf_counter() - start:.0f} s, failures "
              f"{dict(failing)}", file=sys.stderr, flush=True)  # fmt: skip

    seconds = time.perf_counter() - start
    lines = [
        f"Soak: {done} {args.kind} cases (seed {args.seed}, "
        f"dtypes {', '.join(args.dtype or DTYPES)}, "
        f"backends {', '.join(args.backend or ['all installed'])}), {seconds:.0f} s",
        "",
        "| layer | failing cases | " + " | ".join(quantities) + " |",
        "|---|---:|" + "---:|" * len(quantities),
    ]
    for name in layers:
        ratios = [f"{worst[(name, q)][0]:.3f}" if (name, q) in worst else "-" for q in quantities]
        lines.append(f"| {name} | {failing[name]} | " + " | ".join(ratios) + " |")
    lines += ["", "Cells: the largest error / threshold over every case and oracle (<= 1 passes)."]
    for name, ids in failing_ids.items():
        if ids:
            lines.append(f"{name} failed on: {', '.join(ids)}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
    return 1 if sum(failing.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
