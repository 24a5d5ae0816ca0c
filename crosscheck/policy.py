"""The verdict policy, in one place: what is a FAIL and what is a NOTE.

FAIL means the layer computes something wrong when used the way the book's training loop
uses it: a value off the reference; an exception or a wrong shape on valid input; the
caller's inputs changed; an array it returned changed by a later call; params that are
not the very arrays passed in, or grads not updated in place (the optimizer would not
see them); an exit, a hang, a crash.

A NOTE is what a careful engineer wants to know but is not a wrong computation. The
kinds, with what each note says and how to change it, are NOTES below. `--strict` makes
every note a failure, and an explicit `--dtype` makes the two float32 notes failures
(the user asked for a check at that precision).
"""

from __future__ import annotations

from dataclasses import dataclass

# kind -> (what it means, how to change it)
NOTES: dict[str, tuple[str, str]] = {
    "float32_outputs": (
        "computes in float32 whatever the parameters' dtype (as the book does with "
        "dtype='f'), so its float64 cases were judged at float32's tolerance against the "
        "float64 reference",
        "to compute in float64, allocate with the parameters' dtype: "
        "np.empty((N, T, H), dtype=Wx.dtype)",
    ),
    "float32_precision": (
        "is right only to float32 precision in float64 cases: somewhere it rounds to "
        "float32 (dtype='f', np.float32, astype(np.float32))",
        "keep the parameters' dtype throughout to get float64 precision",
    ),
    "reads_returned_hs": (
        "has a backward that reads the hs forward returned: when the caller writes into "
        "that array (the book's callers never do) the gradients change",
        "keep a private copy for backward, or return a copy",
    ),
    "read_only": (
        "returns a read-only hs: a caller that writes into it would get an error",
        "return a writeable array",
    ),
    "tuples": (
        "holds params or grads in a tuple of the very arrays (the book uses lists; "
        "model.params += layer.params works with both)",
        "use lists: params = [Wx, Wh, b]",
    ),
}
NOTE_KINDS = frozenset(NOTES)
DTYPE_NOTES = frozenset({"float32_outputs", "float32_precision"})


@dataclass(frozen=True)
class Policy:
    """strict: every note fails; explicit_dtype: the user chose the dtypes (--dtype), so
    a float32 result in a float64 case fails."""

    strict: bool = False
    explicit_dtype: bool = False

    def fails(self, kind: str) -> bool:
        """Whether a problem of `kind` makes the verdict FAIL."""
        if kind not in NOTE_KINDS:
            return True
        return self.strict or (self.explicit_dtype and kind in DTYPE_NOTES)


def note_text(kind: str) -> str:
    """'computes in float32 ... ; to compute in float64, ...'"""
    meaning, fix = NOTES[kind]
    return f"{meaning}; {fix}"
