"""Tolerance study: the fixed float32 threshold against one that also follows a float32 twin.

    python benchmarks/tolerance_study.py --cases 20000 --seed 4242 --save a.npz
    python benchmarks/tolerance_study.py --cases 20000 --seed 2026 --save b.npz
    python benchmarks/tolerance_study.py --merge a.npz b.npz        # tables over both runs
    python benchmarks/tolerance_study.py --cases 0 --f64-cases 5000 --f64-reference jax

The old rule judges a float32 quantity against RTOL * sqrt(steps) (RTOL = 3e-5). The
new rule (crosscheck/twin.py) takes max(RTOL * sqrt(steps), K * twin_error), where
twin_error is the error of a plain float32 recomputation of the same case (the twin)
against the same float64 reference, at the same (segment, backward call, quantity).

What it measures, on float32 cases of `generate_cases(N, S, ["float32"])` plus the
seed-4242 case of the issue, against the float64 reference `mistakes.simulate(case,
case.data())` (no mistake), with every layer driven in-process by crosscheck.drive:
- per correct layer and quantity: the worst error / threshold under the old rule and
  under the twin rule for several K, and how many cases fail under each;
- the worst layer error / twin error where it matters (layer error above half, or a
  quarter, of the old threshold): the K a margin of 2 needs;
- the catch rate of tests.catalog.wrong_dwh_off_by_0p1pct (dWh x 1.001) under both
  rules, over generate_cases(30, 0) and over the study's float32 cases;
- how much the twin term loosens the threshold, per weight regime (it should not in
  the well-conditioned small and moderate regimes);
- float64: correct float64 layers in the exploding and saturating regimes, their
  margin under 1e-12 * sqrt(steps), and the float64 twin's error beside it (against
  simulate, or with --f64-reference against a real oracle: jax, torch, torch.nn.RNN).

Beside the catalog's correct layers it defines three more here (time-major, and two
extras whose tanh is not NumPy's float32 one: a hand-written formula and float64's,
rounded), and drives the catalog's dWh x 1.001 layer as the mistake to catch.

It runs in one process; set OPENBLAS_NUM_THREADS=1 on a shared machine (done here
when unset). Run from the repository root.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib
import math
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# crosscheck/__init__ imports the verification pipeline (verify, the report), which the
# study does not use: load the package's modules without it, so that the study depends
# only on cases, drive, compare, mistakes and twin.
if "crosscheck" not in sys.modules:
    _pkg = types.ModuleType("crosscheck")
    _pkg.__path__ = [str(ROOT / "crosscheck")]
    sys.modules["crosscheck"] = _pkg

import numpy as np  # noqa: E402

import handrnn  # noqa: E402
from crosscheck import compare, twin  # noqa: E402
from crosscheck.cases import REGIMES, Case, generate_cases, parse_case  # noqa: E402
from crosscheck.drive import drive  # noqa: E402
from crosscheck.mistakes import simulate  # noqa: E402
from crosscheck.quantities import QUANTITIES, SegmentValues  # noqa: E402

ISSUE_CASE = "f32:N4:D5:H3:exploding:stateful:64z,64r,64r2*:129057371"  # seed 4242's failure
KS = (2.0, 3.0, 4.0, 6.0, 8.0)
WRONG = "wrong_dwh_x1.001"


# --------------------------------------------------------------------------------------
# Two more correct layers, written differently from the catalog's.


class TimeMajorRNN:
    """Correct, time-major: states (T + 1, N, H), batched matmuls, tensordot for the sums.

    a_t = (x_t Wx + b) + h_{t-1} Wh with the projections of all steps done first;
    dt_t = (dh_next + dhs_t) * (1 - h_t h_t); the weight gradients contract the time
    and batch axes at once (np.tensordot), in time-major order.
    """

    def __init__(self, Wx: Any, Wh: Any, b: Any, stateful: bool = False) -> None:
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.h: Any = None
        self.dh: Any = None
        self.cache: Any = None

    def forward(self, xs: Any) -> Any:
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        xs_tm = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, D)
        A = np.matmul(xs_tm, Wx) + b  # (T, N, H)
        hseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        hseq[0] = self.h
        for t in range(T):
            hseq[t + 1] = np.tanh(A[t] + np.matmul(hseq[t], Wh))
        self.cache = (xs_tm, hseq)
        self.h = hseq[-1].copy()
        return hseq[1:].transpose(1, 0, 2).copy()

    def backward(self, dhs: Any) -> Any:
        Wx, Wh, _ = self.params
        xs_tm, hseq = self.cache
        T, N, _ = xs_tm.shape
        H = Wh.shape[0]
        dhs_tm = dhs.transpose(1, 0, 2)
        dts = np.empty((T, N, H), dtype=Wx.dtype)
        g = np.zeros((N, H), dtype=Wx.dtype)
        for t in range(T - 1, -1, -1):
            h = hseq[t + 1]
            dts[t] = (g + dhs_tm[t]) * (1 - h * h)
            g = np.matmul(dts[t], Wh.T)
        self.grads[0][...] = np.tensordot(xs_tm, dts, axes=([0, 1], [0, 1]))
        self.grads[1][...] = np.tensordot(hseq[:-1], dts, axes=([0, 1], [0, 1]))
        self.grads[2][...] = dts.sum(axis=(0, 1))
        self.dh = g
        return np.matmul(dts, Wx.T).transpose(1, 0, 2).copy()

    def set_state(self, h: Any) -> None:
        self.h = h

    def reset_state(self) -> None:
        self.h = None


def _own_tanh(a: Any) -> Any:
    """tanh(a) = sign(a) (1 - e) / (1 + e), e = exp(-2|a|): a hand-written tanh, in a's dtype."""
    e = np.exp(-2 * np.abs(a))
    return np.sign(a) * ((1 - e) / (1 + e))


class OwnTanhRNN(TimeMajorRNN):
    """Correct, but with its own tanh formula instead of np.tanh (an extra: it does not
    share NumPy's tanh rounding with the twin, so it shows how far the rule leans on it)."""

    def forward(self, xs: Any) -> Any:
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        hs = np.empty((N, T, H), dtype=Wx.dtype)
        hseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        hseq[0] = h = self.h
        for t in range(T):
            h = _own_tanh(np.dot(h, Wh) + np.dot(xs[:, t], Wx) + b)
            hs[:, t] = hseq[t + 1] = h
        self.cache = (np.ascontiguousarray(xs.transpose(1, 0, 2)), hseq)
        self.h = h.copy()
        return hs


class Float64TanhRNN(TimeMajorRNN):
    """Correct, float32 everywhere except tanh, taken in float64 and rounded once (an extra:
    a correctly rounded float32 tanh, so its rounding is not NumPy's float32 tanh's)."""

    def forward(self, xs: Any) -> Any:
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=Wx.dtype)
        hseq = np.empty((T + 1, N, H), dtype=Wx.dtype)
        hseq[0] = self.h
        for t in range(T):
            a = np.dot(hseq[t], Wh) + np.dot(xs[:, t], Wx) + b
            hseq[t + 1] = np.tanh(a.astype(np.float64))  # rounded to the params' dtype here
        self.cache = (np.ascontiguousarray(xs.transpose(1, 0, 2)), hseq)
        self.h = hseq[-1].copy()
        return hseq[1:].transpose(1, 0, 2).copy()


def _catalog(name: str) -> Callable[..., Any]:
    factory: Callable[..., Any] = importlib.import_module(f"tests.catalog.{name}").TimeRNN
    return factory


def float32_layers() -> dict[str, Callable[..., Any]]:
    return {
        "book_original": _catalog("book_original"),
        "correct_vectorized": _catalog("correct_vectorized"),
        "correct_step_accumulate": _catalog("correct_step_accumulate"),
        "correct_float64_internal": _catalog("correct_float64_internal"),
        "handrnn": handrnn.TimeRNN,
        "time_major": TimeMajorRNN,
        "own_tanh (extra)": OwnTanhRNN,
        "f64_tanh (extra)": Float64TanhRNN,
        WRONG: _catalog("wrong_dwh_off_by_0p1pct"),
    }


def float64_layers() -> dict[str, Callable[..., Any]]:
    layers = float32_layers()
    del layers["book_original"], layers[WRONG]  # the book's dtype='f' fails at float64
    return {"correct_book_dtype": _catalog("correct_book_dtype"), **layers}


# --------------------------------------------------------------------------------------
# Measuring: one row per (layer, case, position).

COLUMNS = ("layer", "case", "regime", "quantity", "segment", "call", "error", "old", "twin")


def _errors(
    observed: Sequence[SegmentValues], reference: Sequence[SegmentValues]
) -> dict[twin.Position, float]:
    return {
        (k, j, q): compare.relative_error(
            q, observed[k].get(q, j or 0), reference[k].get(q, j or 0)
        ).error
        for k, j, q in twin.positions(observed)
    }


def references(cases: Sequence[Case], source: str) -> Iterator[list[SegmentValues]]:
    """Each case's float64 reference: mistakes.simulate (no mistake), or an oracle of
    crosscheck.oracles by name ("jax", "torch", "torch.nn.RNN"; needs that framework)."""
    if source == "simulate":
        for case in cases:
            yield simulate(case, case.data())
        return
    from crosscheck.oracles import BACKENDS, load_backend, reference

    backend = source.split(".")[0] if source.split(".")[0] in BACKENDS else source
    oracle = next(o for o in load_backend(backend) if o.name == source)
    for lo in range(0, len(cases), 500):
        for ref in reference(oracle, cases[lo : lo + 500]):
            assert ref is not None, f"{source} does not support a case"
            yield ref


def measure(
    cases: Sequence[Case],
    layers: dict[str, Callable[..., Any]],
    twin_dtype: str | None = None,
    source: str = "simulate",
    progress: bool = True,
) -> dict[str, Any]:
    """Rows of COLUMNS for every layer, case and position, as arrays; plus timings."""
    names = list(layers)
    rows: list[tuple[int, int, int, int, int, int, float, float, float]] = []
    t_twin = t_ref = 0.0
    t_layer = dict.fromkeys(names, 0.0)
    start = time.perf_counter()
    refs = references(cases, source)
    for i, case in enumerate(cases):
        t0 = time.perf_counter()
        ref = next(refs)
        t1 = time.perf_counter()
        tw = twin.twin_errors(case, ref, dtype=twin_dtype)
        t2 = time.perf_counter()
        t_ref, t_twin = t_ref + t1 - t0, t_twin + t2 - t1
        r = REGIMES.index(case.regime)
        for li, name in enumerate(names):
            t3 = time.perf_counter()
            obs = drive(layers[name], case)
            t_layer[name] += time.perf_counter() - t3
            if obs.problems or len(obs.segments) != len(case.segments):
                raise SystemExit(f"{name} on {case.id}: {obs.problems}")
            for (k, j, q), err in _errors(obs.segments, ref).items():
                old = compare.threshold(case.dtype, case.chain_steps(k))
                row = (li, i, r, QUANTITIES.index(q), k, -1 if j is None else j)
                rows.append((*row, err, old, tw[(k, j, q)]))
        if progress and (i + 1) % 1000 == 0:
            el = time.perf_counter() - start
            print(f"  {i + 1}/{len(cases)} cases, {el:.0f} s", file=sys.stderr, flush=True)
    a = np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))
    out: dict[str, Any] = {c: a[:, n] for n, c in enumerate(COLUMNS)}
    for c in ("layer", "case", "regime", "quantity", "segment", "call"):
        out[c] = out[c].astype(np.int64)
    out["names"] = np.array(names)
    out["source"] = np.array(source)
    out["case_ids"] = np.array([c.id for c in cases])
    out["seconds"] = np.array(
        [time.perf_counter() - start, t_ref, t_twin, *(t_layer[n] for n in names)]
    )
    return out


def merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate saved runs (same layers), renumbering cases."""
    out: dict[str, Any] = {}
    offset = 0
    for p in parts:
        if "names" in out and list(p["names"]) != list(out["names"]):
            raise SystemExit("cannot merge runs over different layers")
        q = dict(p)
        q["case"] = p["case"] + offset
        offset += len(p["case_ids"])
        for c in (*COLUMNS, "case_ids"):
            out[c] = q[c] if c not in out else np.concatenate([out[c], q[c]])
        out["names"], out["source"] = p["names"], p.get("source", np.array("simulate"))
        out["seconds"] = p["seconds"] if "seconds" not in out else out["seconds"] + p["seconds"]
    return out


# --------------------------------------------------------------------------------------
# Tables.


def _md(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(x: float, digits: int = 3) -> str:
    return "-" if not math.isfinite(x) else f"{x:.{digits}g}"


def _new(d: dict[str, Any], k: float) -> Any:
    tw = np.where(np.isfinite(d["twin"]), d["twin"], 0.0)
    return np.maximum(d["old"], k * tw)


def tables32(d: dict[str, Any], ks: Sequence[float]) -> str:
    names = list(d["names"])
    n_cases = len(d["case_ids"])
    out = [f"### float32: {n_cases} cases, {len(d['error'])} (layer, position) rows\n"]
    correct = [n for n in names if n != WRONG]

    # Failures per layer (cases with any failing position) and worst ratios.
    rows = []
    for name in correct:
        m = d["layer"] == names.index(name)
        e, old = d["error"][m], d["old"][m]
        row = [name, _f((e / old).max()), _cases_failing(d, m, old)]
        for k in ks:
            new = _new(d, k)[m]
            row += [_f((e / new).max()), _cases_failing(d, m, new)]
        rows.append(row)
    head = ["layer", "old: worst e/thr", "old: cases failing"]
    for k in ks:
        head += [f"K={k:g}: worst", f"K={k:g}: failing"]
    out.append("Worst error / threshold and cases failing (any quantity), per layer:\n")
    out.append(_md(head, rows))

    # Per layer and quantity.
    rows = []
    for name in correct:
        for qi, q in enumerate(QUANTITIES):
            m = (d["layer"] == names.index(name)) & (d["quantity"] == qi)
            e = d["error"][m]
            row = [name, q, _f((e / d["old"][m]).max())]
            row += [_f((e / _new(d, k)[m]).max()) for k in ks]
            rows.append(row)
    out.append("\nWorst error / threshold per layer and quantity:\n")
    out.append(_md(["layer", "quantity", "old", *(f"K={k:g}" for k in ks)], rows))

    # Layer error / twin error where the twin term can matter.
    rows = []
    for name in correct:
        m = d["layer"] == names.index(name)
        e, old, tw = d["error"][m], d["old"][m], d["twin"][m]
        for frac in (0.5, 0.25):
            sel = e > frac * old
            ratio = e[sel] / np.maximum(tw[sel], 1e-300)
            if ratio.size:
                wq = QUANTITIES[int(d["quantity"][m][sel][np.argmax(ratio)])]
                rows.append(
                    [name, f"> {frac:g} old", int(sel.sum()), _f(np.median(ratio)),
                     _f(np.quantile(ratio, 0.99)), _f(ratio.max()), wq]
                )  # fmt: skip
            else:
                rows.append([name, f"> {frac:g} old", 0, "-", "-", "-", "-"])
    out.append(
        "\nLayer error / twin error at the positions where the layer's error exceeds a "
        "fraction of the old threshold (a margin of 2 under the new rule needs "
        "K >= 2 x the max of the '> 0.5 old' rows):\n"
    )
    out.append(_md(["layer", "where", "positions", "median", "p99", "max", "worst quantity"], rows))

    # The issue's case.
    ids = list(d["case_ids"])
    if ISSUE_CASE in ids:
        ci = ids.index(ISSUE_CASE)
        rows = []
        for name in names:
            m = (d["layer"] == names.index(name)) & (d["case"] == ci)
            e, old, tw = d["error"][m], d["old"][m], d["twin"][m]
            w = int(np.argmax(e / old))
            row = [name, QUANTITIES[int(d["quantity"][m][w])], int(d["segment"][m][w])]
            row += [_f(e[w]), _f(old[w]), _f(tw[w]), _f(e[w] / old[w])]
            row += [_f((e / _new(d, k)[m]).max()) for k in ks]
            rows.append(row)
        out.append(f"\nThe issue's case {ISSUE_CASE} (worst position under the old rule):\n")
        head = ["layer", "quantity", "segment", "error", "old thr", "twin error", "e/old"]
        out.append(_md(head + [f"worst e/new K={k:g}" for k in ks], rows))

    out.append("\n" + catch_table(d, ks))
    out.append("\n" + growth_table(d, ks))
    return "\n".join(out)


def _cases_failing(d: dict[str, Any], m: Any, limit: Any) -> int:
    bad = d["error"][m] > limit
    return int(np.unique(d["case"][m][bad]).size)


def catch_table(d: dict[str, Any], ks: Sequence[float]) -> str:
    """How often dWh x 1.001 is caught (in dWh) on the study's cases, by regime."""
    names = list(d["names"])
    if WRONG not in names:
        return ""
    m = (d["layer"] == names.index(WRONG)) & (d["quantity"] == QUANTITIES.index("dWh"))
    rows = []
    for label, sel in [("all", np.ones(m.sum(), bool))] + [
        (r, d["regime"][m] == i) for i, r in enumerate(REGIMES)
    ]:
        cases = np.unique(d["case"][m][sel])
        row: list[Any] = [label, cases.size]
        for limit in [d["old"][m], *(_new(d, k)[m] for k in ks)]:
            bad = (d["error"][m] > limit) & sel
            row.append(f"{np.unique(d['case'][m][bad]).size / max(cases.size, 1):.1%}")
        rows.append(row)
    head = ["regime", "cases", "old", *(f"K={k:g}" for k in ks)]
    return (
        f"{WRONG} (tests.catalog.wrong_dwh_off_by_0p1pct) caught in dWh, fraction of cases:\n\n"
        + _md(head, rows)
    )


def growth_table(d: dict[str, Any], ks: Sequence[float]) -> str:
    """How much the twin term raises the threshold, per regime (each position once)."""
    m = d["layer"] == 0
    tw, old, reg = d["twin"][m], d["old"][m], d["regime"][m]
    rows = []
    for i, r in enumerate(REGIMES):
        sel = reg == i
        row: list[Any] = [r, int(sel.sum()), _f(np.max(tw[sel] / old[sel]))]
        for k in ks:
            g = np.maximum(old[sel], k * tw[sel]) / old[sel]
            row += [f"{np.mean(g > 1):.2%}", _f(g.max())]
        rows.append(row)
    head = ["regime", "positions", "max twin/old"]
    for k in ks:
        head += [f"K={k:g}: share raised", f"K={k:g}: max new/old"]
    top = float(np.max(tw))
    return (
        "Threshold growth from the twin term, per regime (share of positions where K x twin "
        f"> RTOL sqrt(steps), and the largest new/old ratio); largest twin error seen {top:.3g}:"
        "\n\n" + _md(head, rows)
    )


def timing_table(d: dict[str, Any]) -> str:
    names = list(d["names"])
    n = len(d["case_ids"])
    s = d["seconds"]
    source = str(d.get("source", "simulate"))
    rows = [["total", _f(s[0], 4)], [f"float64 reference ({source})", _f(1e3 * s[1] / n)]]
    rows += [["twin", _f(1e3 * s[2] / n)]]
    rows += [[f"drive {name}", _f(1e3 * t / n)] for name, t in zip(names, s[3:])]
    return "Time (total s; else ms per case):\n\n" + _md(["what", "time"], rows)


def catalog_catch(ks: Sequence[float]) -> str:
    """dWh x 1.001 over generate_cases(30, 0), both dtypes, as tests/test_catalog.py runs it."""
    factory = _catalog("wrong_dwh_off_by_0p1pct")
    rows = []
    counts = {"old": [0, 0, 0, 0]} | {f"K={k:g}": [0, 0, 0, 0] for k in ks}
    for case in generate_cases(30, 0):
        data = case.data()
        ref = simulate(case, data)
        tw = twin.twin_errors(case, ref, data) if case.dtype in twin.TWIN_DTYPES else {}
        obs = drive(factory, case)
        errs = _errors(obs.segments, ref)
        dt = 0 if case.dtype == "float32" else 2
        for rule in counts:
            k = None if rule == "old" else float(rule[2:])
            bad = set()
            for (s, j, q), e in errs.items():
                steps = case.chain_steps(s)
                limit = (
                    compare.threshold(case.dtype, steps)
                    if k is None
                    else twin.twin_threshold(case.dtype, steps, tw.get((s, j, q)), k=k)
                )
                if e > limit:
                    bad.add(q)
            counts[rule][dt] += bool(bad)
            counts[rule][dt + 1] += "dWh" in bad
    for rule, (f32_any, f32_dwh, f64_any, f64_dwh) in counts.items():
        rows.append([rule, f"{f32_any + f64_any}/30", f"{f32_dwh}/15", f"{f64_dwh}/15"])
    return "dWh x 1.001 over generate_cases(30, 0) (15 float32, 15 float64):\n\n" + _md(
        ["rule", "cases caught (any quantity)", "float32: dWh fails", "float64: dWh fails"],
        rows,
    )


def tables64(d: dict[str, Any], k: float) -> str:
    """float64 margins under 1e-12 sqrt(steps) (and with the oracles' 4e-12 floor)."""
    names = list(d["names"])
    source = str(d.get("source", "simulate"))
    out = [f"### float64: {len(d['case_ids'])} cases, reference {source}\n"]
    rows = []
    for i, r in enumerate(REGIMES):
        for name in names:
            m = (d["layer"] == names.index(name)) & (d["regime"] == i)
            if not m.any():
                continue
            e, old, tw = d["error"][m], d["old"][m], d["twin"][m]
            floor = np.maximum(old, 4 * 1e-12)
            qi = int(d["quantity"][m][np.argmax(e / old)])
            rows.append(
                [r, name, int(np.unique(d["case"][m]).size), _f(e.max()), _f((e / old).max()),
                 QUANTITIES[qi], _f((e / floor).max()), _f((k * tw / old).max()),
                 f"{np.mean(k * tw > old):.2%}"]
            )  # fmt: skip
    head = [
        "regime", "layer", "cases", "max error", "max e/(1e-12 sqrt(steps))", "at",
        "max e/(with 4e-12 floor)", f"max {k:g} x twin64 / thr", f"share {k:g} x twin64 > thr",
    ]  # fmt: skip
    out.append(_md(head, rows))
    return "\n".join(out)


# --------------------------------------------------------------------------------------


def _in_regime(regime: str) -> Callable[[Case], bool]:
    return lambda case: case.regime == regime


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=2000, help="float32 cases (default 2000)")
    p.add_argument("--seed", type=int, default=4242)
    p.add_argument("--f64-cases", type=int, default=1000, help="float64 cases per regime")
    p.add_argument("--f64-regimes", nargs="*", default=["exploding", "saturating"])
    p.add_argument(
        "--f64-reference",
        default="simulate",
        help="float64 reference of the float64 part: simulate (default), jax, torch or "
        "torch.nn.RNN (an oracle; needs the framework)",
    )
    p.add_argument("--save", help="write the raw float32 rows to this .npz")
    p.add_argument("--save64", help="write the raw float64 rows to this .npz")
    p.add_argument("--merge", nargs="+", help="print the tables of saved float32 runs")
    p.add_argument("--merge64", nargs="+", help="print the tables of saved float64 runs")
    p.add_argument("--K", type=float, default=twin.K, help="K for the float64 twin column")
    a = p.parse_args(argv)
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")

    if a.merge or a.merge64:
        if a.merge:
            d = merge([dict(np.load(f)) for f in a.merge])
            print(tables32(d, KS), "\n\n" + timing_table(d))
        if a.merge64:
            print(tables64(merge([dict(np.load(f)) for f in a.merge64]), a.K))
        return 0

    if a.cases:
        cases = generate_cases(a.cases, a.seed, ["float32"])
        if ISSUE_CASE not in {c.id for c in cases}:
            cases = [parse_case(ISSUE_CASE), *cases]
        print(f"float32: generate_cases({a.cases}, {a.seed}, ['float32']) + the issue's case")
        d = measure(cases, float32_layers())
        if a.save:
            np.savez_compressed(a.save, **d)
        print(tables32(d, KS), "\n\n" + timing_table(d))
        print("\n" + catalog_catch(KS))

    if a.f64_cases:
        cases64: list[Case] = []
        for r in a.f64_regimes:
            cases64 += generate_cases(a.f64_cases, a.seed, ["float64"], accept=_in_regime(r))
        print(
            f"\nfloat64: {a.f64_cases} cases per regime {a.f64_regimes}, seed {a.seed}, "
            f"reference {a.f64_reference}"
        )
        d64 = measure(cases64, float64_layers(), "float64", a.f64_reference)
        if a.save64:
            np.savez_compressed(a.save64, **d64)
        print(tables64(d64, a.K), "\n\n" + timing_table(d64))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
