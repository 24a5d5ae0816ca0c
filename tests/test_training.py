"""A book-style training loop works unchanged: the loss of a tiny TimeRNN model falls.

The model, optimizer and clipping follow "Deep Learning from Scratch 2": the model
collects `params` and `grads` once at construction, the optimizer updates params in
place from those lists, and the same layer is reused batch after batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import make_params

from handrnn import TimeRNN

Array = np.ndarray


class TimeAffine:
    """hs (N, T, H) -> ys (N, T, O), the book's TimeAffine."""

    def __init__(self, W: Array, b: Array) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: Array | None = None

    def forward(self, x: Array) -> Array:
        N, T, _ = x.shape
        W, b = self.params
        self.x = x
        return (x.reshape(N * T, -1) @ W + b).reshape(N, T, -1)

    def backward(self, dout: Array) -> Array:
        assert self.x is not None
        N, T, _ = self.x.shape
        W, _ = self.params
        dout = dout.reshape(N * T, -1)
        self.grads[0][...] = self.x.reshape(N * T, -1).T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return (dout @ W.T).reshape(N, T, -1)


class Model:
    """TimeRNN -> TimeAffine -> mean squared error."""

    def __init__(self, D: int, H: int, O: int, dtype: Any, stateful: bool, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rnn = TimeRNN(*make_params(rng, D, H, dtype, scale=1.0), stateful=stateful)
        W = (rng.normal(size=(H, O)) / np.sqrt(H)).astype(dtype)
        self.affine = TimeAffine(W, np.zeros(O, dtype=dtype))
        self.params: list[Array] = []
        self.grads: list[Array] = []
        for layer in (self.rnn, self.affine):
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, xs: Array, ys: Array) -> float:
        self.pred = self.affine.forward(self.rnn.forward(xs))
        self.diff = self.pred - ys
        return float(np.mean(self.diff**2))

    def backward(self) -> None:
        dpred = 2 * self.diff / self.diff.size
        self.rnn.backward(self.affine.backward(dpred))


class SGD:
    def __init__(self, lr: float) -> None:
        self.lr = lr

    def update(self, params: list[Array], grads: list[Array]) -> None:
        for i in range(len(params)):
            params[i] -= self.lr * grads[i]


def clip_grads(grads: list[Array], max_norm: float) -> None:
    """The book's clip_grads: scales the grads in place."""
    total_norm = np.sqrt(sum(float(np.sum(g**2)) for g in grads))
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for g in grads:
            g *= rate


def delayed_copy_batch(rng: np.random.Generator, N: int, T: int, dtype: Any) -> tuple[Array, Array]:
    """xs (N, T, 1) random; the target at step t is x_{t-1} (0 at t = 0): needs memory."""
    xs = rng.uniform(-1, 1, size=(N, T, 1)).astype(dtype)
    ys = np.zeros_like(xs)
    ys[:, 1:] = xs[:, :-1]
    return xs, ys


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_falls_training_batch_after_batch(dtype: Any) -> None:
    rng = np.random.default_rng(1)
    model = Model(D=1, H=8, O=1, dtype=dtype, stateful=False, seed=2)
    optimizer = SGD(lr=0.1)
    rnn_params = list(model.rnn.params)
    xs_eval, ys_eval = delayed_copy_batch(rng, 64, 10, dtype)
    loss_before = model.forward(xs_eval, ys_eval)

    for _ in range(300):
        xs, ys = delayed_copy_batch(rng, 16, 10, dtype)
        model.forward(xs, ys)
        model.backward()
        optimizer.update(model.params, model.grads)

    loss_after = model.forward(xs_eval, ys_eval)
    # Predicting 0 scores var(x) * 9/10 = 0.3: far below that, the state must carry x_{t-1}.
    assert loss_after < min(loss_before / 10, 0.03), (loss_before, loss_after)
    assert all(p is q for p, q in zip(model.rnn.params, rnn_params, strict=True))
    assert model.pred.dtype == dtype


def test_loss_falls_with_stateful_truncated_bptt() -> None:
    """One long sequence cut into segments; the state is carried across segments."""
    rng = np.random.default_rng(3)
    N, T, length = 4, 10, 400
    t = np.arange(length + 1) + rng.integers(0, 50, size=(N, 1))
    series = (np.sin(0.3 * t) + 0.5 * np.sin(0.11 * t)).astype(np.float32)[:, :, None]
    xs_all, ys_all = series[:, :-1], series[:, 1:]  # predict the next value
    model = Model(D=1, H=8, O=1, dtype=np.float32, stateful=True, seed=4)
    optimizer = SGD(lr=0.3)

    epoch_losses = []
    for _ in range(25):
        model.rnn.reset_state()
        losses = []
        for start in range(0, length, T):
            seg = slice(start, start + T)
            losses.append(model.forward(xs_all[:, seg], ys_all[:, seg]))
            model.backward()
            clip_grads(model.grads, 1.0)
            optimizer.update(model.params, model.grads)
        epoch_losses.append(float(np.mean(losses)))

    assert epoch_losses[-1] < epoch_losses[0] / 10, epoch_losses
