"""A catalog of gated layers, TimeLSTM and TimeGRU: wrong ones, each with ONE mistake; right ones.

Every module here defines a complete, NumPy-only `TimeLSTM` or `TimeGRU` with the book's
API (`cls(Wx, Wh, b, stateful=False)`, params and grads [Wx, Wh, b], forward, backward,
layer.h, layer.dh, set_state, reset_state; the LSTM also layer.c and `set_state(h, c)`).
The wrong ones are `correct_book_dtype_lstm.py` or `correct_book_dtype_gru.py` (the
book's layer with its dtype fixed) with one line changed, marked `# MISTAKE:`, so
`diff correct_book_dtype_lstm.py wrong_lstm_xyz.py` shows the bug; the module docstring
says what is wrong and which line of math it breaks. Three are another right layer with
one line changed, each naming it in its docstring: `wrong_lstm_sigmoid_grad_as_sigma`
(`correct_fused_lstm`), `wrong_gru_sigmoid_grad_as_sigma` (`correct_fused_gru`) and
`wrong_gru_r_after_product` (`correct_einsum_gru`). The right ones compute the same math
in other ways; `correct_fused_lstm` and `correct_time_major_lstm` also expose `layer.dc`
(the book's TimeLSTM keeps none), so dc gets compared.

Each wrong layer is the model crosscheck.models.lstm / gru making the mistake `cause`
(tests/test_models_gated.py checks their values agree), and `cause` is what a diagnosis
must name first.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

FAMILIES = ("forward", "backward", "book-facts", "correct", "notes")
KIND_CLASSES = {"lstm": "TimeLSTM", "gru": "TimeGRU"}

_GRADS = frozenset({"dxs", "dWx", "dWh", "db", "dh"})
_FORWARD = frozenset({"hs", "h"})


@dataclass(frozen=True)
class Entry:
    """One catalog layer.

    name: short name (the module's, without wrong_ or correct_); module: its import
    path; family: one of FAMILIES; mistake: the bug in one line (for a correct layer,
    how it differs from the book); correct: crosscheck must accept it at every dtype;
    flags: for a wrong layer, the quantities it gets wrong among hs, h, c, dxs, dWx,
    dWh, db, dh and dc (dc only where the layer exposes layer.dc; found by running it,
    a wrong forward makes the gradients wrong too); kinds: the kinds of failure
    expected; note: for the "notes" family, the note (crosscheck.policy.NOTES) the
    layer must get; kind: "lstm" or "gru"; cls: the class name, "TimeLSTM" or
    "TimeGRU"; cause: for a wrong layer, the mistake (crosscheck.models.<kind>.MISTAKES)
    the diagnosis must name first.
    """

    name: str
    module: str
    family: str
    mistake: str
    correct: bool
    flags: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    note: str = ""
    kind: str = "lstm"
    cls: str = "TimeLSTM"
    cause: str = ""

    def layer(self) -> Any:
        """The layer class, a factory `cls(Wx, Wh, b, stateful=False)`."""
        return getattr(importlib.import_module(self.module), self.cls)

    @property
    def spec(self) -> str:
        """The form the CLI takes: `--layer tests.catalog_gated.wrong_x:TimeLSTM`."""
        return f"{self.module}:{self.cls}"


def _entry(name: str, module: str, family: str, mistake: str, correct: bool, **kw: Any) -> Entry:
    kind = "lstm" if "lstm" in module else "gru"
    return Entry(name, f"tests.catalog_gated.{module}", family, mistake, correct,
                 kind=kind, cls=KIND_CLASSES[kind], **kw)  # fmt: skip


def _wrong(
    cause: str, family: str, mistake: str, flags: frozenset[str], kinds: str = "mismatch"
) -> Entry:
    """The layer wrong_<cause>.py, whose diagnosis must name `cause`."""
    return _entry(cause, f"wrong_{cause}", family, mistake, False, flags=flags,
                  kinds=frozenset(kinds.split()), cause=cause)  # fmt: skip


def _right(name: str, how: str) -> Entry:
    return _entry(name, f"correct_{name}", "correct", how, True)


def _noted(name: str, what: str, note: str) -> Entry:
    """Right when used as the book's training loop uses it, but worth a note."""
    return _entry(name, name, "notes", what, False, note=note)


CATALOG: list[Entry] = [
    # LSTM, backward math.
    _wrong("lstm_dc_without_f", "backward",
           "the cell-state gradient goes back as ds instead of ds * f", _GRADS),
    _wrong("lstm_tanh_grad_from_c", "backward",
           "tanh'(c_t) written 1 - c_t^2 instead of 1 - tanh(c_t)^2", _GRADS),
    _wrong("lstm_sigmoid_grad_as_sigma", "backward",
           "the derivative of the gates f, i, o taken as σ instead of σ(1 - σ)",
           _GRADS | {"dc"}),  # the fused layer it is made from exposes dc
    _wrong("lstm_gate_order_backward", "backward",
           "dA stacked as (di, df, dg, do), PyTorch's order, not the forward's f, g, i, o",
           _GRADS),
    _wrong("lstm_df_from_c_next", "backward",
           "the forget gate's gradient from c_t instead of c_{t-1}", _GRADS),
    # LSTM, the two paths back through time.
    _wrong("lstm_no_dh_carry", "book-facts",
           "backward passes dhs[:, t] alone, the + dh from step t+1 forgotten", _GRADS),
    _wrong("lstm_no_dc_carry", "book-facts",
           "backward passes dc_next = 0 at every step: the cell-state path is cut", _GRADS),
    # GRU, forward and backward math.
    _wrong("gru_r_after_product", "forward",
           "h_hat = tanh(x Wxh + r * (h Whh) + bh), PyTorch's formula, with its exact gradient",
           _FORWARD | _GRADS),
    _wrong("gru_no_one_minus_z", "backward",
           "dh_prev starts from zeros: the (1 - z) path h_{t-1} -> h_t is left out", _GRADS),
    _wrong("gru_dz_sign", "backward", "dz = dh (h_prev - h_hat), the sign flipped", _GRADS),
    _wrong("gru_dr_without_h", "backward",
           "dr = dhr, the factor h_prev left out", _GRADS),
    _wrong("gru_sigmoid_grad_as_sigma", "backward",
           "the derivative of the gates z and r taken as σ instead of σ(1 - σ)", _GRADS),
    _wrong("gru_no_dh_carry", "book-facts",
           "backward passes dhs[:, t] alone, the + dh from step t+1 forgotten", _GRADS),
    # Right, written differently.
    _right("book_dtype_lstm", "the book's TimeLSTM with buffers in the params' dtype, not 'f'"),
    _right("fused_lstm", "no cells; input projection hoisted, gates as one array, dc kept"),
    _right("time_major_lstm", "time-major state arrays, tensordot sums, σ via tanh, dc kept"),
    _right("float64_internal_lstm", "float64 inside whatever the dtype; grads summed per step"),
    _right("book_dtype_gru", "the book's TimeGRU with buffers in the params' dtype, not 'f'"),
    _right("fused_gru", "no cells; input projection hoisted, z and r as one block"),
    _right("einsum_gru", "time-major; the candidate's (r h) Whh an einsum with its exact gradient"),
    _right("float64_internal_gru", "float64 inside whatever the dtype; grads summed per step"),
    # The book's own code: right as the book's training loop uses it, worth a note.
    _noted("book_time_lstm",
           "the book's TimeLSTM unmodified: hs and dxs hard-coded to float32 (dtype='f')",
           "float32_outputs"),
    _noted("book_time_gru",
           "the book's TimeGRU unmodified: hs and dxs hard-coded to float32 (dtype='f')",
           "float32_outputs"),
]  # fmt: skip
