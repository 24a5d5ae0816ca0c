"""The quantities compared, their names, and the containers that hold them.

One forward gives hs and h (and c, the LSTM's cell state); each backward gives dxs,
dWx, dWh, db and dh (and dc, the gradient w.r.t. the LSTM's initial cell state, where
the layer exposes it). The layer's observed values and every oracle's reference use
these same containers; a quantity a kind does not have is None and has no position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

from crosscheck.cases import CELL_STATE

Array = NDArray[Any]
# Where a quantity is compared: (segment, backward call or None for hs and h, quantity).
Position = tuple[int, "int | None", str]

FORWARD_QUANTITIES = ("hs", "h", "c")
BACKWARD_QUANTITIES = ("dxs", "dWx", "dWh", "db", "dh", "dc")
QUANTITIES = FORWARD_QUANTITIES + BACKWARD_QUANTITIES


def quantities_for(kind: str) -> tuple[str, ...]:
    """The quantities a layer of `kind` is compared in, in QUANTITIES order (c and dc
    for a kind with a cell state only; dc only where the layer exposes `layer.dc`)."""
    return tuple(q for q in QUANTITIES if kind in CELL_STATE or q not in ("c", "dc"))


# Quantities with a time axis (axis 1), for "first bad time step".
TIME_INDEXED = frozenset({"hs", "dxs"})
# What each quantity is, for people reading a report.
MEANING = {
    "hs": "hidden states returned by forward, (N, T, H)",
    "h": "layer.h after forward: the final hidden state, (N, H)",
    "c": "layer.c after forward: the LSTM's final cell state, (N, H)",
    "dxs": "gradient returned by backward w.r.t. xs, (N, T, D)",
    "dWx": "grads[0]: gradient w.r.t. Wx summed over steps, (D, G*H)",
    "dWh": "grads[1]: gradient w.r.t. Wh summed over steps, (H, G*H)",
    "db": "grads[2]: gradient w.r.t. b summed over steps, (G*H,)",
    "dh": "layer.dh after backward: gradient w.r.t. the segment's initial state, (N, H)",
    "dc": "layer.dc after backward: gradient w.r.t. the LSTM's initial cell state, (N, H)",
}
# G, the gate blocks of the weights: 1 for the RNN, 4 for the LSTM, 3 for the GRU.


@dataclass(frozen=True)
class Grads:
    """One backward(dhs): dxs (N, T, D), dWx (D, G*H), dWh (H, G*H), db (G*H,), dh (N, H);
    dc (N, H) for the LSTM, where known."""

    dxs: Array
    dWx: Array
    dWh: Array
    db: Array
    dh: Array
    dc: Array | None = None


@dataclass(frozen=True)
class SegmentValues:
    """One segment: forward's hs (N, T, H), h (N, H) and, for the LSTM, c (N, H); then
    one Grads per backward call."""

    hs: Array
    h: Array
    backward: tuple[Grads, ...]
    c: Array | None = None

    def get(self, quantity: str, call: int = 0) -> Array:
        """The value of `quantity`; backward quantities come from backward call `call`."""
        if quantity in FORWARD_QUANTITIES:
            return getattr(self, quantity)  # type: ignore[no-any-return]
        return getattr(self.backward[call], quantity)  # type: ignore[no-any-return]


def positions(values: Sequence[SegmentValues]) -> list[Position]:
    """Every compared position of `values`, in segment, call and QUANTITIES order: the one
    walk over what a case produces."""
    out: list[Position] = []
    for k, seg in enumerate(values):
        out += [(k, None, q) for q in FORWARD_QUANTITIES if getattr(seg, q) is not None]
        for j, g in enumerate(seg.backward):
            out += [(k, j, q) for q in BACKWARD_QUANTITIES if getattr(g, q) is not None]
    return out


def value_at(values: Sequence[SegmentValues], p: Position) -> Array:
    """The array at position `p` of `values`."""
    return values[p[0]].get(p[2], p[1] or 0)
