"""The PyTorch oracles, in float64.

- "torch": autograd over the explicit loop h_t = tanh(h_{t-1} Wh + x_t Wx + b); the
  jobs of one shape are stacked into one graph.
- "torch.nn.RNN": the real torch.nn.RNN module and its own kernels, one job at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from crosscheck.cases import Case
from crosscheck.oracles import Oracle, SegmentJob
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


def _tensor(a: Array) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: never alias a job


def _numpy(t: torch.Tensor) -> Array:
    return np.array(t.detach().numpy(), order="C")  # a C-contiguous copy of its own


# Measured over 2000 generated cases (1000 per dtype), for both torch oracles: at most
# 1.3e-13 relative disagreement with any other oracle in compare's scale (max |ref|
# floored at compare.FLOOR), alike for float32 and float64 cases. Without the floor:
# "torch" at most 4.9e-12; "torch.nn.RNN", which keeps torch's 1 - tanh^2, up to 4e-3
# on gradients that saturation has shrunk to ~1e-15 (see _Tanh).
_ACCURACY = 1e-12


class TorchLoopOracle:
    """Autograd over the explicit loop, batched over jobs of one shape."""

    name = "torch"
    accuracy = _ACCURACY

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        out: dict[int, SegmentValues] = {}
        groups: dict[tuple[tuple[int, ...], tuple[int, ...], int], list[int]] = {}
        for i, j in enumerate(jobs):
            groups.setdefault((j.xs.shape, j.Wh.shape, len(j.dhs)), []).append(i)
        with _one_thread():
            for idx in groups.values():
                out.update(zip(idx, self._run_group([jobs[i] for i in idx])))
        return [out[i] for i in range(len(jobs))]

    def _run_group(self, jobs: list[SegmentJob]) -> list[SegmentValues]:
        """B jobs of one shape at once: Wx (B, D, H), Wh (B, H, H), b (B, 1, H),
        h0 (B, N, H), xs (B, N, T, D) -> hs (B, N, T, H)."""

        def leaf(arrays: list[Array]) -> torch.Tensor:
            return _tensor(np.stack(arrays)).requires_grad_()

        Wx, Wh, h0, xs = (leaf([getattr(j, k) for j in jobs]) for k in ("Wx", "Wh", "h0", "xs"))
        b = leaf([j.b[None, :] for j in jobs])
        xw = xs @ Wx[:, None] + b[:, None]  # every x_t Wx + b in one product
        h, steps = h0, []
        for t in range(xs.shape[2]):
            h = _Tanh.apply(h @ Wh + xw[:, :, t])  # type: ignore[no-untyped-call]
            steps.append(h)
        hs = torch.stack(steps, dim=2)
        calls = len(jobs[0].dhs)
        grads = [
            torch.autograd.grad(
                hs,
                (xs, Wx, Wh, b, h0),
                grad_outputs=_tensor(np.stack([j.dhs[k] for j in jobs])),
                retain_graph=k + 1 < calls,
            )
            for k in range(calls)
        ]
        hs_np = _numpy(hs)
        return [
            SegmentValues(
                hs=hs_np[i].copy(),
                h=hs_np[i, :, -1].copy(),
                backward=tuple(
                    Grads(
                        _numpy(dxs[i]),
                        _numpy(dWx[i]),
                        _numpy(dWh[i]),
                        _numpy(db[i, 0]),
                        _numpy(dh[i]),
                    )
                    for dxs, dWx, dWh, db, dh in grads
                ),
            )
            for i in range(len(jobs))
        ]


class TorchRNNOracle:
    """torch.nn.RNN(D, H, tanh, batch_first) with weight_ih = Wx.T, weight_hh = Wh.T,
    bias_ih = b, bias_hh = 0, and h0 passed as (1, N, H). One module per (D, H)."""

    name = "torch.nn.RNN"
    accuracy = _ACCURACY

    def __init__(self) -> None:
        self._modules: dict[tuple[int, int], torch.nn.RNN] = {}

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
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


def oracles() -> list[Oracle]:
    return [TorchLoopOracle(), TorchRNNOracle()]
