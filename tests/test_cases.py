"""crosscheck.cases: the seeded generator, case ids, and the invariant that an id
reproduces its case bit for bit."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crosscheck.cases import (
    DTYPES,
    REGIMES,
    Case,
    CaseData,
    Segment,
    generate_cases,
    parse_case,
)

MANY = generate_cases(300, seed=0)


def arrays(d: CaseData) -> list[np.ndarray]:
    out = [d.Wx, d.Wh, d.b]
    for s in d.segments:
        out += [s.xs, *([] if s.h_set is None else [s.h_set]), *s.dhs]
    return out


def digest(c: Case) -> str:
    h = hashlib.sha256()
    for a in arrays(c.data()):
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def test_generate_cases_is_deterministic_for_a_seed_and_differs_across_seeds() -> None:
    assert generate_cases(40, seed=3) == generate_cases(40, seed=3)
    assert generate_cases(40, seed=3)[:10] == generate_cases(10, seed=3)  # prefix-stable
    other = {c.id for c in generate_cases(40, seed=4)}
    assert not other & {c.id for c in generate_cases(40, seed=3)}


def test_dtypes_alternate_and_can_be_restricted() -> None:
    assert [c.dtype for c in generate_cases(6)] == ["float32", "float64"] * 3
    assert {c.dtype for c in generate_cases(5, dtypes=["float64"])} == {"float64"}
    with pytest.raises(ValueError, match="dtype must be one of"):
        generate_cases(2, dtypes=["float16"])


def test_generator_covers_sizes_and_sequence_lengths() -> None:
    for size in ("N", "D", "H"):
        assert 1 in {getattr(c, size) for c in MANY}, size
    assert any(c.D == c.H for c in MANY) and any(c.D != c.H for c in MANY)
    assert any(c.N > 1 and c.H > 1 and c.D > 1 for c in MANY)
    Ts = {s.T for c in MANY for s in c.segments}
    assert max(Ts) == 64 and 1 in Ts


def test_generator_covers_regimes_modes_starts_and_flags() -> None:
    assert {c.regime for c in MANY} == set(REGIMES)
    assert {c.stateful for c in MANY} == {True, False}
    assert {s.start for c in MANY for s in c.segments} == {"z", "c", "s", "r"}
    assert any(c.segments[0].start == "s" for c in MANY)  # set_state before the first forward
    assert any(s.backwards == 2 for c in MANY for s in c.segments)
    assert any(s.scribble for c in MANY for s in c.segments)
    assert {len(c.segments) for c in MANY} >= {1, 2, 3, 4}
    # Long carried chains: the tolerance and the oracles see 100+ steps of one state.
    assert max(c.chain_steps(len(c.segments) - 1) for c in MANY) > 100


def test_generated_cases_are_valid_for_their_mode() -> None:
    for c in MANY:
        if not c.stateful:
            assert all(s.start == "z" for s in c.segments)
        else:
            assert all(s.start in "csr" for s in c.segments[1:])


def test_parse_case_inverts_id_for_generated_cases() -> None:
    for c in MANY:
        assert parse_case(c.id) == c
        assert str(c) == c.id


segments = st.builds(
    Segment,
    T=st.integers(1, 500),
    start=st.sampled_from("zcsr"),
    backwards=st.sampled_from([1, 2]),
    scribble=st.booleans(),
)


@st.composite
def any_case(draw: st.DrawFn) -> Case:
    stateful = draw(st.booleans())
    segs = draw(st.lists(segments, min_size=1, max_size=6))
    if not stateful:
        segs = [Segment(s.T, "z", s.backwards, s.scribble) for s in segs]
    else:
        first = segs[0].start if segs[0].start in "zs" else "z"
        segs = [Segment(segs[0].T, first, segs[0].backwards, segs[0].scribble)] + [
            s if s.start != "z" else Segment(s.T, "c", s.backwards, s.scribble) for s in segs[1:]
        ]
    return Case(
        draw(st.sampled_from(DTYPES)),
        draw(st.integers(1, 10_000)),
        draw(st.integers(1, 10_000)),
        draw(st.integers(1, 10_000)),
        draw(st.sampled_from(REGIMES)),
        stateful,
        tuple(segs),
        draw(st.integers(0, 2**64)),
    )


@settings(max_examples=300, deadline=None)
@given(any_case())
def test_parse_case_inverts_id_for_any_valid_case(c: Case) -> None:
    assert parse_case(c.id) == c
    assert parse_case(f"  {c.id}\n") == c


def test_the_same_id_gives_bit_identical_data() -> None:
    for c in MANY[:40]:
        a, b = arrays(c.data()), arrays(parse_case(c.id).data())
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert x.dtype == y.dtype == np.dtype(c.dtype)
            assert x.tobytes() == y.tobytes()


def test_an_id_reproduces_the_data_in_a_fresh_interpreter() -> None:
    ids = [c.id for c in MANY[:6]]
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from crosscheck_helpers import case; "
        "from test_cases import digest; print(*(digest(case(i)) for i in sys.argv[2:]))"
    )
    tests_dir = str(Path(__file__).parent)
    out = subprocess.run(
        [sys.executable, "-c", code, tests_dir, *ids], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [digest(parse_case(i)) for i in ids]


def test_float32_data_are_the_float64_draws_rounded() -> None:
    c64 = parse_case("f64:N2:D3:H4:saturating:stateful:5s2,5c:123")
    c32 = parse_case("f32:N2:D3:H4:saturating:stateful:5s2,5c:123")
    for a64, a32 in zip(arrays(c64.data()), arrays(c32.data())):
        assert a32.dtype == np.float32 and a64.dtype == np.float64
        assert np.array_equal(a64.astype(np.float32), a32)


def test_data_shapes_follow_the_case() -> None:
    c = parse_case("f32:N2:D3:H4:moderate:stateful:5s2,7c*,1r:9")
    d = c.data()
    assert (d.Wx.shape, d.Wh.shape, d.b.shape) == ((3, 4), (4, 4), (4,))
    assert [s.xs.shape for s in d.segments] == [(2, 5, 3), (2, 7, 3), (2, 1, 3)]
    assert [len(s.dhs) for s in d.segments] == [2, 1, 1]
    assert [s.dhs[0].shape for s in d.segments] == [(2, 5, 4), (2, 7, 4), (2, 1, 4)]
    assert [s.h_set is None for s in d.segments] == [False, True, True]
    assert d.segments[0].h_set.shape == (2, 4)
    assert all(a.flags.c_contiguous for a in arrays(d))


def test_regimes_have_the_documented_weights() -> None:
    exploding = parse_case("f64:N1:D3:H6:exploding:stateless:1z:4").data()
    singular_values = np.linalg.svd(exploding.Wh, compute_uv=False)
    assert np.allclose(singular_values, 1.25)  # scaled orthogonal: gradients grow
    small = parse_case("f64:N1:D6:H6:small:stateless:1z:4").data()
    saturating = parse_case("f64:N1:D6:H6:saturating:stateless:1z:4").data()
    assert np.abs(small.Wx).max() < np.abs(saturating.Wx).max()


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "not a case id.*expected e.g."),
        ("f16:N2:D3:H4:moderate:stateful:7z:1", "not a case id"),
        ("f32:N2:D3:moderate:stateful:7z:1", "not a case id"),
        ("f32:N2:D3:H4:moderate:stateful:7z:-1", "not a case id"),
        ("f32:N2:D3:H4:moderate:stateful:7q:1", "bad segment '7q'.*expected e.g."),
        ("f32:N2:D3:H4:moderate:stateful:7z3:1", "bad segment '7z3'"),
        ("f32:N2:D3:H4:moderate:stateful:7z,,7c:1", "bad segment ''"),
        ("f32:N2:D3:H4:huge:stateful:7z:1", "regime must be one of"),
        ("f32:N0:D3:H4:moderate:stateful:7z:1", "N, D, H >= 1"),
        ("f32:N2:D3:H4:moderate:stateful:0z:1", "segment 0: T must be >= 1"),
        ("f32:N2:D3:H4:moderate:stateless:7z,7c:1", "segment 1: a stateless case"),
        ("f32:N2:D3:H4:moderate:stateful:7c:1", "segment 0 cannot carry"),
        ("f32:N2:D3:H4:moderate:stateful:7r:1", "segment 0 cannot carry or reset"),
        # In a stateful case drive would carry the state while the oracles restart it.
        ("f32:N2:D3:H4:moderate:stateful:7z,7z:1", "segment 1: a stateful case starts from zeros"),
    ],
)
def test_invalid_ids_raise_value_error_saying_what_is_wrong(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_case(text)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"dtype": "f32"}, "dtype must be one of"),
        ({"regime": "wild"}, "regime must be one of"),
        ({"H": 0}, "N, D, H >= 1"),
        ({"N": 2.0}, "must be integers"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"segments": ()}, "at least one segment"),
        ({"segments": (Segment(3, "z", backwards=3),)}, "backwards 1 or 2"),
        ({"segments": (Segment(3), Segment(3, "x"))}, "start must be z, c, s or r"),  # type: ignore[arg-type]
    ],
)
def test_invalid_case_fields_raise_value_error(fields: dict[str, object], match: str) -> None:
    base: dict[str, object] = dict(
        dtype="float32", N=2, D=3, H=4, regime="moderate", stateful=True,
        segments=(Segment(3),), seed=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match=match):
        Case(**{**base, **fields})  # type: ignore[arg-type]


def test_chain_steps_count_across_carried_segments_and_restart() -> None:
    c = parse_case("f32:N1:D1:H1:small:stateful:5z,3c,2c2,4s,6c,1r,2c:0")
    assert [c.chain_steps(k) for k in range(7)] == [5, 8, 10, 4, 10, 1, 3]
    assert c.total_steps == 23
    stateless = parse_case("f32:N1:D1:H1:small:stateless:5z,3z:0")
    assert [stateless.chain_steps(k) for k in range(2)] == [5, 3]
