"""handrnn: a hand-written, NumPy-only tanh RNN with the API of "Deep Learning from Scratch 2".

Usage::

    from handrnn import TimeRNN
    layer = TimeRNN(Wx, Wh, b, stateful=False)  # Wx (D, H), Wh (H, H), b (H,)
    hs = layer.forward(xs)                       # xs (N, T, D) -> hs (N, T, H)
    dxs = layer.backward(dhs)                    # dhs (N, T, H) -> dxs (N, T, D)
"""

from handrnn.layers import RNN, TimeRNN

__all__ = ["RNN", "TimeRNN", "__version__"]
__version__ = "0.1.0"
