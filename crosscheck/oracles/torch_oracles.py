"""The PyTorch oracles, in float64.

torch          autograd over an explicit loop, jobs of one shape stacked into one graph
torch.nn.RNN   the real torch.nn.RNN module (its own kernels), one job at a time
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

# Only float32 matmuls can use TF32, and ours are float64; switched off anyway so a
# GPU host can never round an oracle to 10-bit mantissas.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run on one intra-op thread: on tensors this small, waking a thread pool costs
    far more than the arithmetic (measured 30x slower per nn.RNN job with two threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Tanh(torch.autograd.Function):
    """tanh whose derivative is 1 / cosh(a)^2 from the pre-activation a. Torch's own
    1 - tanh(a)^2 keeps only ~1e-16 / (1 - tanh(a)^2) of relative precision where
    tanh saturates, and none once tanh(a) rounds to +-1."""

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
    return t.detach().numpy().copy()  # C-contiguous and owning its memory


class TorchLoopOracle:
    """Autograd over h_t = tanh(h_{t-1} Wh + x_t Wx + b), batched over jobs of one shape."""

    name = "torch"
    # Measured: at most 4.7e-15 relative disagreement with "jax" and 1.8e-15 with
    # "torch.nn.RNN" over 400 cases (200 per dtype).
    accuracy = 1e-12

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
        """Jobs of one shape as a batch B: Wx (B, D, H), Wh (B, H, H), xs (B, N, T, D), ..."""

        def stack(arrays: list[Array]) -> torch.Tensor:
            return _tensor(np.stack(arrays)).requires_grad_()

        Wx, Wh, h0, xs = (stack([getattr(j, k) for j in jobs]) for k in ("Wx", "Wh", "h0", "xs"))
        b = stack([j.b[None, :] for j in jobs])  # (B, 1, H) broadcasts over N
        xw = xs @ Wx[:, None] + b[:, None]  # (B, N, T, H): all input projections at once
        h, steps = h0, []
        for t in range(xs.shape[2]):
            h = _Tanh.apply(h @ Wh + xw[:, :, t])
            steps.append(h)
        hs = torch.stack(steps, dim=2)
        calls = len(jobs[0].dhs)
        grads = [
            torch.autograd.grad(
                hs, (xs, Wx, Wh, b, h0),
                grad_outputs=_tensor(np.stack([j.dhs[k] for j in jobs])),
                retain_graph=k + 1 < calls,
            )
            for k in range(calls)
        ]  # fmt: skip
        hs_np = _numpy(hs)
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
                    )  # fmt: skip
                    for g in grads
                ),
            )
            for i in range(len(jobs))
        ]


class TorchRNNOracle:
    """The real torch.nn.RNN (tanh, batch_first): weight_ih = Wx.T, weight_hh = Wh.T,
    bias_ih = b, bias_hh = 0; h0 goes in as (1, N, H)."""

    name = "torch.nn.RNN"
    # Measured: at most 1.8e-15 relative disagreement with "torch" and 4.3e-15 with
    # "jax" over 400 cases (200 per dtype).
    accuracy = 1e-12

    def __init__(self) -> None:
        self._modules: dict[tuple[int, int], torch.nn.RNN] = {}

    def supports(self, case: Case) -> bool:
        return True

    def run(self, jobs: Sequence[SegmentJob]) -> list[SegmentValues]:
        with _one_thread():
            return [self._run_one(j) for j in jobs]

    def _module(self, D: int, H: int) -> torch.nn.RNN:
        if (D, H) not in self._modules:
            # Built on the meta device: no random init (which would advance the
            # global torch RNG) for weights that every job overwrites anyway.
            rnn = torch.nn.RNN(D, H, nonlinearity="tanh", batch_first=True,
                               dtype=torch.float64, device="meta")  # fmt: skip
            self._modules[(D, H)] = rnn.to_empty(device="cpu")
        return self._modules[(D, H)]

    def _run_one(self, job: SegmentJob) -> SegmentValues:
        D, H = job.Wx.shape
        rnn = self._module(D, H)
        w_ih, w_hh, b_ih, b_hh = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0
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
                hs,
                (xs, w_ih, w_hh, b_ih, h0),
                grad_outputs=_tensor(dhs),
                retain_graph=k + 1 < calls,
            )  # fmt: skip
            for k, dhs in enumerate(job.dhs)
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
