"""crosscheck.wire and crosscheck.codec: what a child may send is data, checked on arrival."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from crosscheck_helpers import SMALL_CASES

from crosscheck.codec import observed_from_wire, observed_to_wire, values_from_wire, values_to_wire
from crosscheck.drive import Observed, Problem, drive
from crosscheck.oracles import load_backend, reference
from crosscheck.wire import MAGIC, MAX_HEADER, FrameReader, WireError, encode
from handrnn import TimeRNN


def frames(data: bytes, chunk: int = 7) -> list[object]:
    """Every frame in `data`, fed in small chunks as a pipe may deliver it."""
    reader, out = FrameReader(), []
    for i in range(0, len(data), chunk):
        out += list(reader.feed(data[i : i + chunk]))
    return out


def test_a_frame_round_trips_json_and_float_arrays_in_any_chunking() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.linspace(0, 1, 5)[::2]  # not contiguous
    body = {"op": "x", "list": [1, "two", None, True], "a": a, "nested": {"b": b}}
    (got,) = frames(encode(body) + b"")
    assert got["op"] == "x" and got["list"] == [1, "two", None, True]
    np.testing.assert_array_equal(got["a"], a)
    assert got["a"].dtype == np.float32
    np.testing.assert_array_equal(got["nested"]["b"], b)
    two = frames(encode({"n": 1}) + encode({"n": 2}), chunk=1)
    assert [f["n"] for f in two] == [1, 2]  # type: ignore[index]


@pytest.mark.parametrize(
    "array", [np.array([1, 2], dtype=np.int64), np.array([object()]), np.array([1 + 2j])]
)
def test_only_float32_and_float64_arrays_travel(array: np.ndarray) -> None:  # type: ignore[type-arg]
    with pytest.raises(WireError, match="only float32 and float64"):
        encode({"a": array})


def header_frame(header: object, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return MAGIC + struct.pack(">I", len(raw)) + raw + payload


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage that is not a frame", "do not start a frame"),
        (MAGIC + struct.pack(">I", MAX_HEADER + 1), "too large"),
        (MAGIC + struct.pack(">I", 3) + b"{x}", "not JSON"),
        (header_frame([1, 2]), "no body"),
        (header_frame({"body": 1, "arrays": [["|O", [1]]]}), "bad array spec"),
        (header_frame({"body": 1, "arrays": [["<f8", [-1]]]}), "bad array shape"),
        (header_frame({"body": 1, "arrays": [["<f8", [2**40, 2**20]]]}), "too large"),
        (header_frame({"body": {"$array": 3}, "arrays": []}), "does not carry"),
    ],
)
def test_a_malformed_frame_is_refused_before_anything_is_allocated(
    data: bytes, message: str
) -> None:
    with pytest.raises(WireError, match=message):
        frames(data)


def observed_round_trip(obs: Observed, case_index: int = 0) -> Observed:
    (body,) = frames(encode(observed_to_wire(obs)), chunk=4096)
    return observed_from_wire(body, SMALL_CASES[case_index])


def test_a_layers_values_and_problems_survive_the_wire() -> None:
    case = SMALL_CASES[0]
    obs = drive(TimeRNN, case)
    back = observed_round_trip(obs)
    assert len(back.segments) == len(obs.segments) == len(case.segments)
    for mine, theirs in zip(obs.segments, back.segments):
        np.testing.assert_array_equal(mine.hs, theirs.hs)
        for g, h in zip(mine.backward, theirs.backward):
            np.testing.assert_array_equal(g.dWh, h.dWh)
    with_problem = Observed(problems=[Problem("protocol", "xs", 1, None, "changed")])
    assert observed_round_trip(with_problem).problems == with_problem.problems


def test_the_judge_refuses_values_that_do_not_fit_the_case() -> None:
    case = SMALL_CASES[0]
    body = observed_to_wire(drive(TimeRNN, case))
    body["segments"][0]["hs"] = body["segments"][0]["hs"][:, :-1]  # one step short
    with pytest.raises(WireError, match="segment 0 hs has shape"):
        observed_from_wire(body, case)
    body = observed_to_wire(drive(TimeRNN, case))
    body["segments"].append(body["segments"][0])  # more segments than the case has
    with pytest.raises(WireError, match="at most the case's segments"):
        observed_from_wire(body, case)
    body = observed_to_wire(drive(TimeRNN, case))
    body["problems"] = [{"kind": "pass", "quantity": "hs", "segment": 0, "call": None,
                         "message": "all good"}]  # fmt: skip
    with pytest.raises(WireError, match="no known kind"):
        observed_from_wire(body, case)


def test_a_reference_must_be_float64_and_cover_every_segment() -> None:
    case = SMALL_CASES[0]
    ref = reference(load_backend("numeric")[0], [case])[0]
    assert ref is not None
    body = values_to_wire(ref)
    assert len(values_from_wire(body, case)) == len(case.segments)
    with pytest.raises(WireError, match="every segment"):
        values_from_wire(body[:-1], case)
    body[0]["hs"] = body[0]["hs"].astype(np.float32)
    with pytest.raises(WireError, match="dtype float32"):
        values_from_wire(body, case)
