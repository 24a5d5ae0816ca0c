"""A catalog of TimeRNN layers: wrong ones, each with ONE realistic mistake; right ones.

Every module here defines a complete, NumPy-only `TimeRNN` with the book's API. The
wrong ones are `correct_book_dtype.py` (the book's layer with its dtype fixed) with one
line changed, marked `# MISTAKE:`, so `diff correct_book_dtype.py wrong_xyz.py` shows
the bug; the module docstring says what is wrong and which line of math it breaks.
`wrong_returns_cached_hs.py` is the one exception: it is `correct_vectorized.py` with
one line changed. The right ones compute the same math in other ways.

`tests/test_catalog.py` runs crosscheck on each: every wrong layer must be caught, in
the quantities listed here, and every right one accepted. Try one by hand with

    python -m crosscheck --layer tests.catalog.wrong_no_branch_sum:TimeRNN --cases 30
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

FAMILIES = (
    "forward", "backward", "book-facts", "state", "precision", "protocol", "correct", "notes"
)  # fmt: skip

_GRADS = frozenset({"dxs", "dWx", "dWh", "db", "dh"})
_FORWARD = frozenset({"hs", "h"})
_WEIGHT_GRADS = frozenset({"dWx", "dWh", "db"})


@dataclass(frozen=True)
class Entry:
    """One catalog layer.

    name: short name; module: its import path (the class is `module:TimeRNN`);
    family: one of FAMILIES; mistake: the bug in one line (for a correct layer, how it
    differs from the book); correct: crosscheck must accept it at every dtype;
    flags: for a wrong layer, the quantities it gets wrong (a report must name exactly
    these: a wrong forward makes the gradients wrong too); kinds: the kinds of failure
    expected (mismatch, exception, protocol, ...); note: for the "notes" family, the
    note (crosscheck.policy.NOTES) the layer must get: it passes by default and fails
    with --strict.
    """

    name: str
    module: str
    family: str
    mistake: str
    correct: bool
    flags: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    note: str = ""

    def layer(self) -> Any:
        """The layer class, a factory `TimeRNN(Wx, Wh, b, stateful=False)`."""
        return importlib.import_module(self.module).TimeRNN

    @property
    def spec(self) -> str:
        """The form the CLI takes: `--layer tests.catalog.wrong_x:TimeRNN`."""
        return f"{self.module}:TimeRNN"


def _wrong(
    name: str,
    family: str,
    mistake: str,
    flags: frozenset[str],
    kinds: str = "mismatch",
) -> Entry:
    return Entry(
        name, f"tests.catalog.wrong_{name}", family, mistake, False, flags,
        frozenset(kinds.split()),
    )  # fmt: skip


def _right(name: str, how: str) -> Entry:
    return Entry(name, f"tests.catalog.correct_{name}", "correct", how, True)


def _noted(module: str, what: str, note: str) -> Entry:
    """Right when used as the book's training loop uses it, but worth a note."""
    return Entry(module.rsplit(".", 1)[-1], f"tests.catalog.{module}", "notes", what, False,
                 note=note)  # fmt: skip


CATALOG: list[Entry] = [
    # Forward math.
    _wrong("forward_no_bias", "forward",
           "the bias b is left out: tanh(h Wh + x Wx)", _FORWARD | _GRADS),
    _wrong("forward_wh_transposed", "forward",
           "the recurrence uses h Wh^T (column-vector formula in row-vector code)",
           _FORWARD | _GRADS),
    # Backward math.
    _wrong("tanh_grad_one_minus_h", "backward",
           "tanh' written as 1 - h instead of 1 - h^2", _GRADS),
    _wrong("tanh_grad_at_h_prev", "backward",
           "tanh' evaluated at h_{t-1} instead of h_t", _GRADS),
    _wrong("dwh_uses_h_next", "backward",
           "dWh formed with h_t instead of h_{t-1}", frozenset({"dWh"})),
    _wrong("dh_prev_no_transpose", "backward",
           "dh_prev = dt Wh instead of dt Wh^T", _GRADS),
    _wrong("db_batch_mean", "backward",
           "db averaged over the batch instead of summed", frozenset({"db"})),
    # The two facts the book stresses.
    _wrong("no_branch_sum", "book-facts",
           "backward passes dhs[:, t] alone, the + dh from step t+1 forgotten", _GRADS),
    _wrong("grads_last_step_only", "book-facts",
           "weight gradients replaced at each step (=) instead of summed (+=)", _WEIGHT_GRADS),
    # State across calls.
    _wrong("stateless_carries", "state",
           "a stateless layer starts each forward from the previous h_T",
           _FORWARD | _GRADS | {"forward"},
           kinds="mismatch exception"),  # a carried h of another batch size: broadcast error
    _wrong("set_state_ignored", "state",
           "set_state stores h as self.h0, which forward never reads", _FORWARD | _GRADS),
    _wrong("reset_state_clears_dh", "state",
           "reset_state clears dh instead of h: the state is carried through a reset",
           _FORWARD | _GRADS),
    _wrong("backward_squares_cache", "state",
           "backward squares the cached h_t in place: a 2nd backward and the carry go wrong",
           _FORWARD | _GRADS, kinds="mismatch protocol"),
    _wrong("grads_accumulate_across_calls", "state",
           "backward adds into grads (+=) instead of overwriting them", _WEIGHT_GRADS),
    # Precision.
    _wrong("dwh_off_by_0p1pct", "precision",
           "dWh is 0.1% too large (a stray factor 1.001)", frozenset({"dWh"})),
    # The protocol: array identity, the caller's arrays, returned arrays.
    _wrong("params_copied", "protocol",
           "params holds copies of Wx, Wh, b: an optimizer's in-place update never arrives",
           frozenset({"params"}), kinds="protocol"),
    _wrong("grads_new_list", "protocol",
           "backward rebinds self.grads to a new list of new arrays",
           frozenset({"grads"}), kinds="protocol"),
    _wrong("branch_sum_in_place", "protocol",
           "the branch sum is written into the caller's dhs (dhs[:, t] += dh)",
           frozenset({"dhs"}), kinds="protocol"),
    _wrong("reuses_hs_buffer", "protocol",
           "forward returns the same hs buffer every call: earlier hs are overwritten",
           frozenset({"hs"}), kinds="protocol"),
    _wrong("cells_from_first_forward", "state",
           "per-step cells made at the first forward only: a longer later batch raises",
           frozenset({"forward"}), kinds="exception"),
    # Right, written differently.
    _right("book_dtype", "the book's layer with buffers in the params' dtype instead of 'f'"),
    _right("vectorized", "no cells; input projection and each weight gradient one product"),
    _right("step_accumulate", "other orders of operations; einsums accumulated into grads"),
    _right("float64_internal", "computes in float64 whatever the dtype; rounds only outputs"),
    _right("time_major", "states kept time-major, batched products, tensordot for the sums"),
    # Right as the book's training loop uses them, each worth a note (crosscheck.policy).
    _noted("book_original",
           "the book's code unmodified: hs and dxs hard-coded to float32 (dtype='f')",
           "float32_outputs"),
    _noted("wrong_dxs_float32", "the book's dtype='f' left in backward: dxs is float32",
           "float32_outputs"),
    _noted("wrong_xs_cast_float32", "forward silently rounds xs to float32, whatever the dtype",
           "float32_precision"),
    _noted("wrong_returns_cached_hs",
           "forward returns the hs backward reads: a caller's in-place edit changes the grads",
           "reads_returned_hs"),
    _noted("noted_tuples", "params and grads are tuples of the very arrays", "tuples"),
]  # fmt: skip
