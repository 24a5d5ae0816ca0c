"""The quantities compared, their names, and the containers that hold them.

One forward gives hs and h; each backward gives dxs, dWx, dWh, db and dh.
The layer's observed values and every oracle's reference use these same containers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from numpy.typing import NDArray

Array = NDArray[Any]
# Where a quantity is compared: (segment, backward call or None for hs and h, quantity).
Position = tuple[int, "int | None", str]

FORWARD_QUANTITIES = ("hs", "h")
BACKWARD_QUANTITIES = ("dxs", "dWx", "dWh", "db", "dh")
QUANTITIES = FORWARD_QUANTITIES + BACKWARD_QUANTITIES
# Quantities with a time axis (axis 1), for "first bad time step".
TIME_INDEXED = frozenset({"hs", "dxs"})
# What each quantity is, for people reading a report.
MEANING = {
    "hs": "hidden states returned by forward, (N, T, H)",
    "h": "layer.h after forward: the final hidden state, (N, H)",
    "dxs": "gradient returned by backward w.r.t. xs, (N, T, D)",
    "dWx": "grads[0]: gradient w.r.t. Wx summed over steps, (D, H)",
    "dWh": "grads[1]: gradient w.r.t. Wh summed over steps, (H, H)",
    "db": "grads[2]: gradient w.r.t. b summed over steps, (H,)",
    "dh": "layer.dh after backward: gradient w.r.t. the segment's initial state, (N, H)",
}


@dataclass(frozen=True)
class Grads:
    """One backward(dhs): dxs (N, T, D), dWx (D, H), dWh (H, H), db (H,), dh (N, H)."""

    dxs: Array
    dWx: Array
    dWh: Array
    db: Array
    dh: Array


@dataclass(frozen=True)
class SegmentValues:
    """One segment: forward's hs (N, T, H) and h (N, H), then one Grads per backward call."""

    hs: Array
    h: Array
    backward: tuple[Grads, ...]

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
        out += [(k, None, q) for q in FORWARD_QUANTITIES]
        for j in range(len(seg.backward)):
            out += [(k, j, q) for q in BACKWARD_QUANTITIES]
    return out


def value_at(values: Sequence[SegmentValues], p: Position) -> Array:
    """The array at position `p` of `values`."""
    return values[p[0]].get(p[2], p[1] or 0)
