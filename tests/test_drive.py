"""crosscheck.drive: running a layer through a case and recording protocol problems.

Each broken layer below is handrnn's TimeRNN with exactly one protocol rule broken.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from crosscheck_helpers import case, run_by_hand

from crosscheck.drive import Observed, Problem, drive
from crosscheck.quantities import quantities_for
from handrnn import TimeRNN

RNN_QUANTITIES = quantities_for("rnn")

# Three segments: set_state + backward twice, carried, reset with scribbled hs.
CASE = case("f32:N2:D3:H4:moderate:stateful:5s2,4c,3r*:21")


def only(observed: Observed) -> Problem:
    assert len(observed.problems) == 1, observed.problems
    return observed.problems[0]


def test_a_correct_layer_has_no_problems_and_the_values_of_a_run_by_hand() -> None:
    for c in (CASE, case("f64:N3:D2:H5:exploding:stateless:6z2*,6z:8")):
        observed = drive(TimeRNN, c)
        assert observed.problems == [] and observed.partial == []
        expected = run_by_hand(TimeRNN, c)
        assert len(observed.segments) == len(expected) == len(c.segments)
        for got, exp in zip(observed.segments, expected):
            assert len(got.backward) == len(exp.backward)
            for q in RNN_QUANTITIES:
                for j in range(len(exp.backward)):
                    assert got.get(q, j).dtype == np.dtype(c.dtype)
                    assert np.array_equal(got.get(q, j), exp.get(q, j)), q


def test_backward_twice_gives_two_sets_of_grads_for_two_dhs() -> None:
    first = drive(TimeRNN, CASE).segments[0]
    assert len(first.backward) == 2
    assert not np.array_equal(first.backward[0].dWx, first.backward[1].dWx)


class RaisesInSecondForward(TimeRNN):
    calls = 0

    def forward(self, xs: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise ZeroDivisionError("boom in forward")
        return super().forward(xs)


def test_an_exception_in_forward_is_recorded_and_stops_the_case() -> None:
    observed = drive(RaisesInSecondForward, CASE)
    p = only(observed)
    assert (p.kind, p.quantity, p.segment, p.call) == ("exception", "forward", 1, None)
    assert p.message.startswith("forward raised ZeroDivisionError: boom in forward")
    assert "test_drive.py" in p.message and "raise ZeroDivisionError" in p.message
    assert len(observed.segments) == 1  # the segment before is kept


class RaisesInSecondBackward(TimeRNN):
    calls = 0

    def backward(self, dhs: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom in backward")
        return super().backward(dhs)


def test_an_exception_in_backward_names_the_call_and_keeps_completed_calls() -> None:
    observed = drive(RaisesInSecondBackward, CASE)
    p = only(observed)
    assert (p.kind, p.quantity, p.segment, p.call) == ("exception", "backward", 0, 1)
    assert "backward raised RuntimeError: boom in backward" in p.message
    assert observed.segments == [] and len(observed.partial) == 1


class NoSetState(TimeRNN):
    def set_state(self, h: Any) -> None:
        raise NotImplementedError("set_state is not written yet")


def test_an_exception_in_set_state_or_the_constructor_is_recorded() -> None:
    p = only(drive(NoSetState, CASE))
    assert (p.kind, p.quantity, p.segment) == ("exception", "set_state", 0)
    assert "set_state raised NotImplementedError: set_state is not written yet" in p.message

    def no_stateful(Wx: Any, Wh: Any, b: Any) -> TimeRNN:
        return TimeRNN(Wx, Wh, b)

    p = only(drive(no_stateful, CASE))
    assert (p.kind, p.quantity) == ("exception", "constructor")
    assert "constructor raised TypeError" in p.message and "stateful" in p.message


class ShortHs(TimeRNN):
    def forward(self, xs: Any) -> Any:
        return super().forward(xs)[:, 1:]


class ListDxs(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        return super().backward(dhs).tolist()


def test_wrong_shapes_and_non_arrays_are_named() -> None:
    p = only(drive(ShortHs, CASE))
    assert (p.kind, p.quantity, p.segment) == ("shape", "hs", 0)
    assert p.message == "hs has shape (2, 4, 4), expected (2, 5, 4)"
    p = only(drive(ListDxs, CASE))
    assert (p.kind, p.quantity, p.call) == ("shape", "dxs", 0)
    assert "dxs is list, expected an ndarray of shape (2, 5, 3)" in p.message


class Float64Grads(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.dh = self.dh.astype(np.float64)
        return dxs


class Float32Everything(TimeRNN):
    def forward(self, xs: Any) -> Any:
        return super().forward(xs).astype("f")


def test_wrong_dtypes_are_named_with_the_expected_dtype() -> None:
    p = only(drive(Float64Grads, CASE))
    assert (p.kind, p.quantity, p.call) == ("dtype", "dh", 0)
    assert "dh came back float64 for float32 parameters" in p.message
    observed = drive(Float32Everything, case("f64:N2:D3:H4:small:stateless:3z:1"))
    p = only(observed)  # a note (crosscheck.policy), and the case goes on
    assert (p.kind, p.quantity) == ("float32_outputs", "hs")
    assert "hs came back float32 for float64 parameters" in p.message
    assert "dtype='f'" in p.message  # the hint for the book's hard-coded dtype
    assert observed.segments[0].hs.dtype == np.float32 and observed.segments[0].backward


class ZeroesXs(TimeRNN):
    def forward(self, xs: Any) -> Any:
        hs = super().forward(xs)
        xs[...] = 0  # e.g. a "free" buffer reuse
        return hs


class ScalesDhs(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        dhs *= 2  # in place: the caller's dhs changes
        return super().backward(dhs)


class EditsSetState(TimeRNN):
    def set_state(self, h: Any) -> None:
        super().set_state(h)
        np.clip(h, -0.5, 0.5, out=h)


def test_mutated_inputs_are_flagged_with_their_quantity() -> None:
    for layer, quantity, call, what in [
        (ZeroesXs, "xs", None, "the xs given to forward in segment 0"),
        (ScalesDhs, "dhs", 0, "the dhs given to backward in segment 0"),
        (EditsSetState, "h_set", None, "the array given to set_state"),
    ]:
        problems = drive(layer, CASE).problems
        assert problems, layer
        p = problems[0]
        assert (p.kind, p.quantity, p.segment, p.call) == ("protocol", quantity, 0, call)
        assert p.message == f"{what} was changed by the layer"


class ReusesHsBuffer(TimeRNN):
    def forward(self, xs: Any) -> Any:
        hs = super().forward(xs)
        if getattr(self, "buf", None) is None or self.buf.shape != hs.shape:
            self.buf = np.empty_like(hs)
        self.buf[...] = hs
        return self.buf


class ReusesDxsBuffer(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        if getattr(self, "buf", None) is None or self.buf.shape != dxs.shape:
            self.buf = np.empty_like(dxs)
        self.buf[...] = dxs
        return self.buf


def test_returned_arrays_that_a_later_call_overwrites_are_flagged() -> None:
    c = case("f32:N2:D3:H4:moderate:stateful:4z,4c:3")
    p = only(drive(ReusesHsBuffer, c))
    assert (p.kind, p.quantity, p.segment) == ("protocol", "hs", 1)
    assert p.message == "the hs returned by forward in segment 0 was changed by the layer"
    p = drive(ReusesDxsBuffer, CASE).problems[0]
    assert (p.kind, p.quantity, p.segment, p.call) == ("protocol", "dxs", 0, 1)
    assert p.message == "the dxs returned by backward in segment 0 was changed by the layer"


class BackwardReadsReturnedHs(TimeRNN):
    """Keeps the very hs array it returned and uses it in backward."""

    def forward(self, xs: Any) -> Any:
        self.returned = super().forward(xs)
        return self.returned

    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.dh = self.dh + 0 * self.returned[:, 0]
        return dxs


def test_values_come_from_a_clean_run_and_a_probe_notes_a_backward_reading_the_returned_hs() -> (
    None
):
    observed = drive(BackwardReadsReturnedHs, case("f32:N2:D3:H4:small:stateless:3z*:2"))
    p = only(observed)
    assert (p.kind, p.quantity, p.segment) == ("reads_returned_hs", "hs", 0)
    assert "overwrote the hs returned in segment 0, dh changed" in p.message
    assert np.isfinite(observed.segments[0].backward[0].dh).all()  # the clean run's values
    assert drive(TimeRNN, case("f32:N2:D3:H4:small:stateless:3z*:2")).problems == []


class ReadOnlyHs(TimeRNN):
    def forward(self, xs: Any) -> Any:
        hs = super().forward(xs)
        hs.flags.writeable = False
        return hs


def test_a_read_only_hs_is_a_note_not_a_crash() -> None:
    observed = drive(ReadOnlyHs, case("f32:N2:D3:H4:small:stateless:3z*:2"))
    assert {(p.kind, p.quantity) for p in observed.problems} == {("read_only", "hs")}
    assert "read-only" in observed.problems[0].message and observed.segments


class CopiesParams(TimeRNN):
    def __init__(self, Wx: Any, Wh: Any, b: Any, stateful: bool = False) -> None:
        super().__init__(Wx.copy(), Wh.copy(), b.copy(), stateful)


class NewGradsEachBackward(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.grads = [g.copy() for g in self.grads]
        return dxs


class NoGrads(TimeRNN):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grads = (self.grads[0], self.grads[1])


class TupleParamsAndGrads(TimeRNN):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params, self.grads = tuple(self.params), tuple(self.grads)  # type: ignore[assignment]


class SgdInside(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.params[1] -= 0.1 * self.grads[1]
        return dxs


def test_params_and_grads_identity_violations_are_flagged() -> None:
    p = only(drive(CopiesParams, CASE))
    assert (p.kind, p.quantity, p.segment) == ("protocol", "params", 0)
    assert "very arrays passed to the constructor" in p.message

    observed = drive(NewGradsEachBackward, CASE)
    assert {(p.kind, p.quantity) for p in observed.problems} == {("protocol", "grads")}
    assert observed.problems[0].call == 0
    assert "overwritten in place" in observed.problems[0].message
    assert len(observed.segments) == 3  # the values are still usable

    p = only(drive(NoGrads, CASE))
    assert (p.kind, p.quantity) == ("protocol", "grads")
    assert "list of three arrays" in p.message

    observed = drive(TupleParamsAndGrads, CASE)
    assert [(p.kind, p.quantity) for p in observed.problems] == [
        ("tuples", "params"),
        ("tuples", "grads"),
    ]
    assert len(observed.segments) == 3  # a note: the values are compared as usual

    p = only(drive(SgdInside, CASE))
    assert (p.kind, p.quantity, p.segment) == ("protocol", "params", 0)
    assert p.message == "the layer changed its parameter Wh in place"


class HIsAView(TimeRNN):
    def forward(self, xs: Any) -> Any:
        hs = super().forward(xs)
        self.h = hs[:, -1]
        return hs


class DhIsAView(TimeRNN):
    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self.dh = dxs[:, 0, :]
        return dxs


def test_state_arrays_sharing_memory_with_returned_arrays_are_flagged() -> None:
    c = case("f32:N2:D4:H4:small:stateless:3z:5")
    p = only(drive(HIsAView, c))
    assert (p.kind, p.quantity) == ("protocol", "h")
    assert "layer.h shares memory with the returned hs" in p.message
    p = only(drive(DhIsAView, c))
    assert (p.kind, p.quantity, p.call) == ("protocol", "dh", 0)


class ZeroesCachedXsInBackward(TimeRNN):
    """handrnn keeps the caller's xs for backward; this one then scribbles on it."""

    def backward(self, dhs: Any) -> Any:
        dxs = super().backward(dhs)
        self._cache[0][...] = 0
        return dxs


def test_inputs_stay_watched_across_later_calls() -> None:
    p = drive(ZeroesCachedXsInBackward, CASE).problems[0]
    assert (p.kind, p.quantity, p.segment, p.call) == ("protocol", "xs", 0, 0)
    assert p.message == "the xs given to forward in segment 0 was changed by the layer"


class NoResetState(TimeRNN):
    reset_state = None  # type: ignore[assignment]


def test_a_missing_method_is_a_protocol_problem() -> None:
    p = only(drive(NoResetState, CASE))
    assert (p.kind, p.quantity, p.segment) == ("protocol", "reset_state", 2)
    assert p.message == "the layer has no method reset_state()"


class UpdatesHInPlace(TimeRNN):
    """Carries the state by writing into the array it exposed as layer.h last time."""

    def forward(self, xs: Any) -> Any:
        old = self.h
        hs = super().forward(xs)
        if old is not None:
            old[...] = self.h
            self.h = old
        return hs


def test_state_arrays_changed_by_a_later_call_are_flagged() -> None:
    p = only(drive(UpdatesHInPlace, case("f32:N2:D3:H4:moderate:stateful:4z,4c:3")))
    assert (p.kind, p.quantity, p.segment) == ("protocol", "h", 1)
    assert p.message == "layer.h as it was after forward in segment 0 was changed by the layer"
