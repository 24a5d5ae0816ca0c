"""The PyTorch oracles, in float64.

- "torch": autograd over the explicit loop of each kind (the book's tanh RNN, LSTM and
  GRU; the math in crosscheck.oracles.numeric), with derivatives that keep their
  relative precision where a gate saturates (_Tanh, _Sigmoid); the jobs of one kind
  and shape are stacked into one graph.
- "torch.nn.RNN": the real torch.nn.RNN module and its own kernels, one job at a time
  (the RNN only).
- "torch.nn.LSTM": the real torch.nn.LSTM module, the book's gate blocks f, g, i, o
  permuted to torch's i, f, g, o (the LSTM only).

torch.nn.GRU is not an oracle: it is not the book's GRU. It applies r after the
recurrent product, h~ = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn)), where the book
has tanh(x Wx_h + (r ⊙ h) Wh_h + b_h), and it uses z the other way round,
h' = (1 - z) ⊙ h~ + z ⊙ h, where the book has (1 - z) ⊙ h + z ⊙ h~. The second could be
mapped (negate z's weights and bias), the first cannot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from crosscheck.cases import Case
from crosscheck.oracles import Oracle, SegmentJob, check_kinds
from crosscheck.quantities import Grads, SegmentValues

Array = NDArray[Any]

# TF32 only ever touches float32 products and ours are float64; off anyway, so that no
# setting elsewhere in the process can route an oracle through 10-bit mantissas.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


@contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread while an oracle runs: on tensors this small a thread pool
    costs far more than the arithmetic (nn.RNN jobs ran up to 40x slower with two
    threads on a busy two-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Tanh(torch.autograd.Function):
    """tanh with derivative 1 / cosh(a)^2 taken from the pre-activation a.

    Torch's own rule, 1 - tanh(a)^2, keeps only ~1e-16 / (1 - tanh(a)^2) of relative
    precision where tanh saturates, and none once tanh(a) rounds to +-1.
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return torch.tanh(a)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (a,) = ctx.saved_tensors
        return grad / torch.cosh(a) ** 2


class _Sigmoid(torch.autograd.Function):
    """σ with derivative σ(a) σ(-a) taken from the pre-activation a.

    Torch's own rule, σ (1 - σ), loses the relative precision of 1 - σ(a) where the gate
    saturates towards 1 (and all of it once σ(a) rounds to 1).
    """

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        return torch.sigmoid(a)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (a,) = ctx.saved_tensors
        return grad * (torch.sigmoid(a) * torch.sigmoid(-a))


def _tanh(a: torch.Tensor) -> torch.Tensor:
    return _Tanh.apply(a)  # type: ignore[no-untyped-call,no-any-return]


def _sigmoid(a: torch.Tensor) -> torch.Tensor:
    return _Sigmoid.apply(a)  # type: ignore[no-untyped-call,no-any-return]


def _tensor(a: Array) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: never alias a job


def _numpy(t: torch.Tensor) -> Array:
    return np.array(t.detach().numpy(), order="C")  # a C-contiguous copy of its own


# Measured pairwise against every other oracle of the kind, in compare's scale (max
# |ref| floored at compare.FLOOR), on iter_cases(2000, seed, kind) (1000 per dtype;
# seeds 1000 and 2000 for the gated kinds, 1000 for the rnn): "torch" at most 2.2e-14
# (lstm), 5.5e-14 (gru) and 3.8e-13 (rnn, against "jax" on the chain JaxOracle names:
# 1.5e-13 from a long-double recomputation); "torch.nn.LSTM" 2.2e-14; "torch.nn.RNN"
# 3.7e-13 (the same chain, 1.5e-13 from long double). Without the floor,
# "torch.nn.RNN", which keeps torch's 1 - tanh^2, is off by up to 4e-3 on gradients
# that saturation has shrunk to ~1e-15 (see _Tanh), "torch.nn.LSTM" (σ (1 - σ)) by up
# to 1.7e-11, "torch" by at most 3.9e-13.
_ACCURACY = 1e-12


class TorchLoopOracle:
    """Autograd over the explicit loop of each kind, batched over jobs of one shape.

    B jobs at once: Wx (B, D, G*H), Wh (B, H, G*H), b (B, 1, G*H), h0 and c0 (B, N, H),
    xs (B, N, T, D) -> hs (B, N, T, H), with the book's cells (see crosscheck.oracles.numeric
    for the math of each).
    """

    name = "torch"
    kinds = ("rnn", "lstm", "gru")  # the kinds it implements
    accuracy = _ACCURACY

    def supports(self, case: Case) -> bool:
        return case.kind in self.kinds

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        out: dict[int, SegmentValues] = {}
        groups: dict[tuple[Any, ...], list[int]] = {}
        check_kinds(self, jobs)
        for i, j in enumerate(jobs):
            groups.setdefault((j.kind, j.xs.shape, j.Wh.shape, len(j.dhs)), []).append(i)
        with _one_thread():
            for idx in groups.values():
                out.update(zip(idx, self._run_group([jobs[i] for i in idx])))
        return [out[i] for i in range(len(jobs))]

    def _run_group(self, jobs: list[SegmentJob]) -> list[SegmentValues]:
        kind, H = jobs[0].kind, jobs[0].H

        def leaf(arrays: list[Array]) -> torch.Tensor:
            return _tensor(np.stack(arrays)).requires_grad_()

        Wx, Wh, h0, xs = (leaf([getattr(j, k) for j in jobs]) for k in ("Wx", "Wh", "h0", "xs"))
        b = leaf([j.b[None, :] for j in jobs])
        inputs = [xs, Wx, Wh, b, h0]
        xw = xs @ Wx[:, None] + b[:, None]  # every x_t Wx + b in one product
        h, steps, c = h0, [], None
        if kind == "lstm":
            c = leaf([j.cell0 for j in jobs])
            inputs.append(c)
        for t in range(xs.shape[2]):
            if kind == "rnn":
                h = _tanh(h @ Wh + xw[:, :, t])
            elif kind == "lstm":
                assert c is not None
                a = h @ Wh + xw[:, :, t]
                f, g, i, o = (a[..., k * H : (k + 1) * H] for k in range(4))
                c = _sigmoid(f) * c + _tanh(g) * _sigmoid(i)
                h = _sigmoid(o) * _tanh(c)
            else:
                ax = xw[:, :, t]
                a_zr = ax[..., : 2 * H] + h @ Wh[..., : 2 * H]
                a_z, a_r = a_zr[..., :H], a_zr[..., H:]
                h_new = _tanh(ax[..., 2 * H :] + (_sigmoid(a_r) * h) @ Wh[..., 2 * H :])
                h = _sigmoid(-a_z) * h + _sigmoid(a_z) * h_new  # 1 - z as σ(-a_z)
            steps.append(h)
        hs = torch.stack(steps, dim=2)
        calls = len(jobs[0].dhs)
        grads = [
            torch.autograd.grad(
                hs,
                inputs,
                grad_outputs=_tensor(np.stack([j.dhs[k] for j in jobs])),
                retain_graph=k + 1 < calls,
            )
            for k in range(calls)
        ]
        hs_np = _numpy(hs)
        c_np = None if c is None else _numpy(c)
        return [
            SegmentValues(
                hs=hs_np[i].copy(),
                h=hs_np[i, :, -1].copy(),
                backward=tuple(
                    Grads(
                        _numpy(g[0][i]),
                        _numpy(g[1][i]),
                        _numpy(g[2][i]),
                        _numpy(g[3][i, 0]),
                        _numpy(g[4][i]),
                        _numpy(g[5][i]) if len(g) > 5 else None,
                    )
                    for g in grads
                ),
                c=None if c_np is None else c_np[i].copy(),
            )
            for i in range(len(jobs))
        ]


class TorchRNNOracle:
    """torch.nn.RNN(D, H, tanh, batch_first) with weight_ih = Wx.T, weight_hh = Wh.T,
    bias_ih = b, bias_hh = 0, and h0 passed as (1, N, H). One module per (D, H)."""

    name = "torch.nn.RNN"
    kinds = ("rnn",)
    accuracy = _ACCURACY

    def __init__(self) -> None:
        self._modules: dict[tuple[int, int], torch.nn.RNN] = {}

    def supports(self, case: Case) -> bool:
        return case.kind in self.kinds

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        check_kinds(self, jobs)
        with _one_thread():
            return [self._run_one(j) for j in jobs]

    def _module(self, D: int, H: int) -> torch.nn.RNN:
        if (D, H) not in self._modules:
            # On the meta device first: no random init (which would draw from the
            # global torch RNG) for weights that every job overwrites.
            rnn = torch.nn.RNN(
                D, H, nonlinearity="tanh", batch_first=True, dtype=torch.float64, device="meta"
            )
            self._modules[(D, H)] = rnn.to_empty(device="cpu")
        return self._modules[(D, H)]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        rnn = self._module(*job.Wx.shape)
        w_ih, w_hh, b_ih, b_hh = (
            rnn.get_parameter(f"{w}_l0") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        with torch.no_grad():
            w_ih.copy_(torch.from_numpy(job.Wx.T))
            w_hh.copy_(torch.from_numpy(job.Wh.T))
            b_ih.copy_(torch.from_numpy(job.b))
            b_hh.zero_()
        xs = _tensor(job.xs).requires_grad_()
        h0 = _tensor(job.h0[None]).requires_grad_()
        hs, _ = rnn(xs, h0)
        calls = len(job.dhs)
        grads = [
            torch.autograd.grad(
                hs, (xs, w_ih, w_hh, b_ih, h0), grad_outputs=_tensor(d), retain_graph=k + 1 < calls
            )
            for k, d in enumerate(job.dhs)
        ]
        hs_np = _numpy(hs)
        return SegmentValues(
            hs=hs_np,
            h=hs_np[:, -1].copy(),
            backward=tuple(
                Grads(_numpy(dxs), _numpy(dw_ih.T), _numpy(dw_hh.T), _numpy(db), _numpy(dh0[0]))
                for dxs, dw_ih, dw_hh, db, dh0 in grads
            ),
        )


# torch.nn.LSTM's gate blocks are i, f, g, o; the book's are f, g, i, o. Block k of
# torch's weights is block TO_TORCH[k] of the book's, and book block k is torch block
# FROM_TORCH[k].
TO_TORCH = (2, 0, 1, 3)
FROM_TORCH = tuple(int(k) for k in np.argsort(TO_TORCH))


def _blocks(a: Array, order: Sequence[int]) -> Array:
    """The gate blocks (axis 0, 4 of H rows) of `a` in `order`: a C-contiguous copy."""
    return np.ascontiguousarray(a.reshape(4, -1, *a.shape[1:])[list(order)].reshape(a.shape))


class TorchLSTMOracle:
    """torch.nn.LSTM(D, H, batch_first) with the book's weights in torch's gate order:
    weight_ih = Wx.T, weight_hh = Wh.T and bias_ih = b with their blocks permuted from
    f, g, i, o to i, f, g, o (TO_TORCH), bias_hh = 0, h0 and c0 passed as (1, N, H); the
    gradients permuted back. One module per (D, H)."""

    name = "torch.nn.LSTM"
    kinds = ("lstm",)
    accuracy = _ACCURACY

    def __init__(self) -> None:
        self._modules: dict[tuple[int, int], torch.nn.LSTM] = {}

    def supports(self, case: Case) -> bool:
        return case.kind in self.kinds

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        check_kinds(self, jobs)
        with _one_thread():
            return [self._run_one(j) for j in jobs]

    def _module(self, D: int, H: int) -> torch.nn.LSTM:
        if (D, H) not in self._modules:
            lstm = torch.nn.LSTM(D, H, batch_first=True, dtype=torch.float64, device="meta")
            self._modules[(D, H)] = lstm.to_empty(device="cpu")  # no random init: see RNN
        return self._modules[(D, H)]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        D, H = job.Wx.shape[0], job.H
        lstm = self._module(D, H)
        w_ih, w_hh, b_ih, b_hh = (
            lstm.get_parameter(f"{w}_l0") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        with torch.no_grad():
            w_ih.copy_(torch.from_numpy(_blocks(job.Wx.T, TO_TORCH)))
            w_hh.copy_(torch.from_numpy(_blocks(job.Wh.T, TO_TORCH)))
            b_ih.copy_(torch.from_numpy(_blocks(job.b, TO_TORCH)))
            b_hh.zero_()
        xs = _tensor(job.xs).requires_grad_()
        h0 = _tensor(job.h0[None]).requires_grad_()
        c0 = _tensor(job.cell0[None]).requires_grad_()
        hs, (_, c_n) = lstm(xs, (h0, c0))
        calls = len(job.dhs)
        grads = [
            torch.autograd.grad(
                hs,
                (xs, w_ih, w_hh, b_ih, h0, c0),
                grad_outputs=_tensor(d),
                retain_graph=k + 1 < calls,
            )
            for k, d in enumerate(job.dhs)
        ]
        hs_np = _numpy(hs)

        def book(dw: torch.Tensor) -> Array:
            return _blocks(_numpy(dw), FROM_TORCH)

        return SegmentValues(
            hs=hs_np,
            h=hs_np[:, -1].copy(),
            backward=tuple(
                Grads(
                    _numpy(dxs),
                    np.ascontiguousarray(book(dw_ih).T),
                    np.ascontiguousarray(book(dw_hh).T),
                    book(db),
                    _numpy(dh0[0]),
                    _numpy(dc0[0]),
                )
                for dxs, dw_ih, dw_hh, db, dh0, dc0 in grads
            ),
            c=_numpy(c_n[0]),
        )


def oracles() -> list[Oracle]:
    return [TorchLoopOracle(), TorchRNNOracle(), TorchLSTMOracle()]
