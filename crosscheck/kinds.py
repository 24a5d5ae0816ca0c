"""Layer kinds: what differs between the book's tanh RNN, LSTM and GRU, in one object each.

A `Kind` holds the parameter shapes (G gate blocks of H columns: Wx (D, G*H), Wh
(H, G*H), b (G*H,)), the state (h, or h and c with `set_state(h, c)` and `layer.c`),
the quantities compared, what they mean, the line of math behind each, the known
mistakes and the float64 model that can make them (crosscheck.diagnose), and the float32
twin (crosscheck.twin). Cases, drive, compare, report, diagnosis and shrinking read a
case's kind from `case.kind` and take everything kind-specific from here: one code path
for every kind. (What arrays a case of each kind draws, G and whether it has a cell
state, is the case generator's: crosscheck.cases.GATES and CELL_STATE.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from crosscheck import mistakes as rnn_mistakes
from crosscheck.cases import CELL_STATE, GATES, KINDS, Case, CaseData
from crosscheck.mistakes import Mistake
from crosscheck.models import gru as gru_model
from crosscheck.models import lstm as lstm_model
from crosscheck.models import rnn as rnn_model
from crosscheck.quantities import MEANING, SegmentValues, quantities_for

Simulate = Callable[[Case, CaseData, str], list[SegmentValues]]
Twin = Callable[[Case, CaseData, str], list[SegmentValues]]


@dataclass(frozen=True)
class Kind:
    """One layer kind.

    name: "rnn", "lstm" or "gru" (crosscheck.cases.KINDS); title: how people call it;
    layer_class: the book's class name; set_state: how a case's start "s" calls it;
    math: quantity -> its line of math;
    mistakes / simulate: the known mistakes and simulate(case, data, mistake), a float64
    model of the layer making one of them ("" for none); twin(case, data, dtype): what a
    careful layer computes in dtype (float32 for the tolerance rule).
    """

    name: str
    title: str
    layer_class: str
    set_state: str
    math: Mapping[str, str]
    mistakes: tuple[Mistake, ...]
    simulate: Simulate
    twin: Twin

    @property
    def gates(self) -> int:
        return GATES[self.name]

    @property
    def has_cell(self) -> bool:
        return self.name in CELL_STATE

    @property
    def quantities(self) -> tuple[str, ...]:
        """The quantities compared, in crosscheck.quantities.QUANTITIES order."""
        return quantities_for(self.name)

    def meaning(self, quantity: str) -> str:
        """What `quantity` is, with this kind's shapes: dWx is (D, 4H) for the LSTM."""
        text = MEANING[quantity]
        g = self.gates
        return text.replace("G*H", "H" if g == 1 else f"{g}H")


RNN = Kind(
    "rnn", "tanh RNN", "TimeRNN", "set_state(h)", rnn_mistakes.MATH,
    rnn_mistakes.MISTAKES, rnn_mistakes.simulate, rnn_model.twin,
)  # fmt: skip


def _twin_of(simulate: Callable[[Case, CaseData, str, str], list[SegmentValues]]) -> Twin:
    """A gated kind's twin: its model without a mistake, computed in the twin's dtype."""
    return lambda case, data, dtype: simulate(case, data, "", dtype)


LSTM = Kind(
    "lstm", "LSTM", "TimeLSTM", "set_state(h, c)", lstm_model.MATH,
    lstm_model.MISTAKES, lstm_model.simulate, _twin_of(lstm_model.simulate),
)  # fmt: skip
GRU = Kind(
    "gru", "GRU", "TimeGRU", "set_state(h)", gru_model.MATH,
    gru_model.MISTAKES, gru_model.simulate, _twin_of(gru_model.simulate),
)  # fmt: skip

KIND_OBJECTS: dict[str, Kind] = {k.name: k for k in (RNN, LSTM, GRU)}


def get_kind(name: str) -> Kind:
    """The Kind called `name`; a ValueError naming the choices otherwise."""
    if name not in KIND_OBJECTS:
        raise ValueError(f"unknown layer kind {name!r}: choose one of {', '.join(KINDS)}")
    return KIND_OBJECTS[name]


def kind_of(case: Case) -> Kind:
    return get_kind(case.kind)
