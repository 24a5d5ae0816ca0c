"""Train a tiny RNN the book's way: layers with params/grads, an SGD loop, no framework.

The task: read a sine wave of unknown frequency and phase one value at a time and
predict the next value. A single step cannot tell which way the wave is going or
how fast, so the model has to carry what it has seen in its hidden state.

    xs (N, T, 1) -> handrnn.TimeRNN -> hs (N, T, H) -> TimeAffine -> ys (N, T, 1) -> MSE

Run:  python train_tiny_rnn.py      (a few seconds; the loss falls epoch by epoch)
"""

from __future__ import annotations

import numpy as np

from handrnn import TimeRNN

rng = np.random.default_rng(0)
N_SEQUENCES, T, H = 512, 24, 16
BATCH, EPOCHS, LR, MAX_GRAD_NORM = 32, 20, 0.1, 5.0


def make_waves(n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """n sine waves: inputs xs (n, length, 1) and the next values ts (n, length, 1)."""
    freq = rng.uniform(0.15, 0.6, size=(n, 1))  # radians per step
    phase = rng.uniform(0.0, 2 * np.pi, size=(n, 1))
    wave = np.sin(freq * np.arange(length + 1) + phase).astype("f")
    return wave[:, :-1, None], wave[:, 1:, None]


class TimeAffine:
    """The same affine map at every step: hs (N, T, H) -> hs W + b (N, T, O)."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        N, T, _ = x.shape
        W, b = self.params
        self.x = x
        return (x.reshape(N * T, -1) @ W + b).reshape(N, T, -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        assert self.x is not None
        N, T, _ = self.x.shape
        W, _ = self.params
        dout = dout.reshape(N * T, -1)
        rx = self.x.reshape(N * T, -1)
        self.grads[0][...] = rx.T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return (dout @ W.T).reshape(N, T, -1)


class TimeMSE:
    """Mean squared error over every step: 0.5 * mean((ys - ts)^2)."""

    def forward(self, ys: np.ndarray, ts: np.ndarray) -> float:
        self.diff = ys - ts
        return float(0.5 * np.mean(self.diff**2))

    def backward(self) -> np.ndarray:
        return self.diff / self.diff.size


class WavePredictor:
    """TimeRNN + TimeAffine; params and grads gathered as in the book's models."""

    def __init__(self, D: int, H: int, O: int) -> None:
        rn = rng.standard_normal
        Wx = (rn((D, H)) / np.sqrt(D)).astype("f")
        Wh = (rn((H, H)) / np.sqrt(H)).astype("f")
        W = (rn((H, O)) / np.sqrt(H)).astype("f")
        self.layers = [TimeRNN(Wx, Wh, np.zeros(H, "f")), TimeAffine(W, np.zeros(O, "f"))]
        self.loss_layer = TimeMSE()
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def forward(self, xs: np.ndarray, ts: np.ndarray) -> float:
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self) -> None:
        dout = self.loss_layer.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)


class SGD:
    def __init__(self, lr: float) -> None:
        self.lr = lr

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        for p, g in zip(params, grads):
            p -= self.lr * g  # in place: the layers hold these very arrays


def clip_grads(grads: list[np.ndarray], max_norm: float) -> None:
    """Scale all gradients down together if their joint norm exceeds max_norm."""
    total = np.sqrt(sum(float(np.sum(g**2)) for g in grads))
    if total > max_norm:
        for g in grads:
            g *= max_norm / (total + 1e-6)


def main() -> None:
    xs, ts = make_waves(N_SEQUENCES, T)
    model, optimizer = WavePredictor(1, H, 1), SGD(LR)
    # The loss of always predicting the current value again, for comparison.
    print(f"baseline (predict x_t again): loss {0.5 * np.mean((xs - ts) ** 2):.4f}")
    print(f"epoch  0 | loss {model.forward(xs, ts):.4f}  (before training)")
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(N_SEQUENCES)
        total = 0.0
        for i in range(0, N_SEQUENCES, BATCH):
            idx = order[i : i + BATCH]
            total += model.forward(xs[idx], ts[idx])
            model.backward()
            clip_grads(model.grads, MAX_GRAD_NORM)
            optimizer.update(model.params, model.grads)
        print(f"epoch {epoch:2d} | loss {total / (N_SEQUENCES // BATCH):.4f}")


if __name__ == "__main__":
    main()
