"""Shared helpers for the crosscheck tests (test_cases, test_compare, test_drive, test_verify,
test_cli): small cases the numeric oracle checks quickly, a float64 reference built on
handrnn for tests that need a reference but not an independent one, fake oracles and a
way to register them, a training loop run by hand, and the book's unmodified TimeRNN.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from crosscheck.cases import Case, parse_case
from crosscheck.oracles import SegmentJob
from crosscheck.quantities import Grads, SegmentValues
from handrnn import TimeRNN

# Small, well-conditioned cases the "numeric" backend checks in milliseconds; together
# they use every start (z, c, s, r), backward twice and scribbled hs, in both dtypes.
SMALL_IDS = (
    "f32:N2:D3:H4:moderate:stateful:5s,5c2,4r*,3c:11",
    "f64:N2:D3:H4:moderate:stateful:5s,5c2,4r*,3c:11",
    "f64:N1:D1:H1:small:stateless:3z,3z2*:5",
    "f32:N3:D2:H5:saturating:stateless:4z2:7",
)
SMALL_CASES = tuple(parse_case(i) for i in SMALL_IDS)


def case(text: str) -> Case:
    return parse_case(text)


def run_by_hand(factory: Any, c: Case) -> list[SegmentValues]:
    """The case's training loop written out plainly (no checks): what drive must reproduce."""
    d = c.data()
    layer = factory(d.Wx.copy(), d.Wh.copy(), d.b.copy(), stateful=c.stateful)
    out = []
    for seg, sd in zip(c.segments, d.segments):
        if seg.start == "s":
            layer.set_state(sd.h_set.copy())
        elif seg.start == "r":
            layer.reset_state()
        hs = layer.forward(sd.xs.copy())
        values = (hs.copy(), np.array(layer.h, copy=True))
        if seg.scribble:
            hs[...] = np.nan
        grads = []
        for dhs in sd.dhs:
            dxs = layer.backward(dhs.copy())
            dWx, dWh, db = (g.copy() for g in layer.grads)
            grads.append(Grads(dxs.copy(), dWx, dWh, db, np.array(layer.dh, copy=True)))
        out.append(SegmentValues(*values, tuple(grads)))
    return out


class HandrnnOracle:
    """A float64 reference computed by handrnn itself: fine where the test is about the
    tolerance model or the plumbing (float64 rounding is far below any float32 threshold),
    never as proof that handrnn is right."""

    name = "handrnn-f64"
    accuracy = 1e-13

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        out = []
        for job in jobs:
            layer = TimeRNN(job.Wx, job.Wh, job.b, stateful=True)
            layer.set_state(job.h0)
            hs = layer.forward(job.xs)
            h = layer.h.copy()
            grads = []
            for dhs in job.dhs:
                dxs = layer.backward(dhs)
                grads.append(Grads(dxs, *(g.copy() for g in layer.grads), layer.dh.copy()))
            out.append(SegmentValues(hs, h, tuple(grads)))
        return out


class ScaledOracle(HandrnnOracle):
    """HandrnnOracle with one quantity multiplied by `factor`: a broken oracle."""

    def __init__(self, name: str, quantity: str, factor: float) -> None:
        self.name, self.quantity, self.factor = name, quantity, factor

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        out = []
        for v in super().run(jobs):
            if self.quantity in ("hs", "h"):
                scaled = {self.quantity: getattr(v, self.quantity) * self.factor}
                out.append(SegmentValues(**{"hs": v.hs, "h": v.h, **scaled}, backward=v.backward))
            else:
                back = tuple(
                    Grads(**{**g.__dict__, self.quantity: g.__dict__[self.quantity] * self.factor})
                    for g in v.backward
                )
                out.append(SegmentValues(v.hs, v.h, back))
        return out


def import_path(path: Path) -> ModuleType:
    """Import the module at `path` under its file name (replacing an earlier import)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


# The book's RNN and TimeRNN exactly as in ../shared/seed/time_rnn_notebook.txt
# (oreilly-japan/deep-learning-from-scratch-2, common/time_layers.py), comments dropped.
# Note the hard-coded dtype='f' (float32) buffers in forward and backward.
BOOK_SOURCE = """\
import numpy as np

class RNN:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        t = np.dot(h_prev, Wh) + np.dot(x, Wx) + b
        h_next = np.tanh(t)

        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, b = self.params
        x, h_prev, h_next = self.cache

        dt = dh_next * (1 - h_next ** 2)
        db = np.sum(dt, axis=0)
        dWh = np.dot(h_prev.T, dt)
        dh_prev = np.dot(dt, Wh.T)
        dWx = np.dot(x.T, dt)
        dx = np.dot(dt, Wx.T)

        self.grads[0][...] = dWx
        self.grads[1][...] = dWh
        self.grads[2][...] = db

        return dx, dh_prev

class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None

        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape
        D, H = Wx.shape

        self.layers = []
        hs = np.empty((N, T, H), dtype='f')

        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype='f')

        for t in range(T):
            layer = RNN(*self.params)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)

        return hs

    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape
        D, H = Wx.shape

        dxs = np.empty((N, T, D), dtype='f')
        dh = 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh = layer.backward(dhs[:, t, :] + dh)
            dxs[:, t, :] = dx

            for i, grad in enumerate(layer.grads):
                grads[i] += grad

        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh

        return dxs

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
"""

# A subclass of handrnn's TimeRNN that is wrong from time step 2 on in forward: hs[:, 2:]
# is 1% too large. For CLI tests, as a module written into a temporary directory.
WRONG_FROM_STEP_2_SOURCE = """\
from handrnn import TimeRNN


class WrongLate(TimeRNN):
    def forward(self, xs):
        hs = super().forward(xs)
        hs[:, 2:] *= 1.01
        return hs
"""
