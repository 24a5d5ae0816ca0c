"""handrnn: hand-written NumPy-only recurrent layers, the API of "Deep Learning from Scratch 2".

The tanh RNN, the LSTM and the GRU, each as the book's one-step cell (`RNN`, `LSTM`,
`GRU`) and its T-step unrolled form (`TimeRNN`, `TimeLSTM`, `TimeGRU`), with the book's
formulas, row vectors and gate order. Usage::

    from handrnn import TimeRNN, TimeLSTM, TimeGRU
    layer = TimeRNN(Wx, Wh, b, stateful=False)   # Wx (D, H), Wh (H, H), b (H,)
    lstm = TimeLSTM(Wx, Wh, b, stateful=True)    # Wx (D, 4H), Wh (H, 4H), b (4H,): f, g, i, o
    gru = TimeGRU(Wx, Wh, b)                     # Wx (D, 3H), Wh (H, 3H), b (3H,): z, r, h-hat
    hs = layer.forward(xs)                       # xs (N, T, D) -> hs (N, T, H)
    dxs = layer.backward(dhs)                    # dhs (N, T, H) -> dxs (N, T, D)

Every layer has `params` ([Wx, Wh, b], the arrays passed in) and `grads` (written in
place); the time layers have `h`, `dh`, `set_state` and `reset_state`, and TimeLSTM also
the cell state `c` and `dc` (`set_state(h, c=None)`).
"""

from handrnn.gru import GRU, TimeGRU
from handrnn.layers import RNN, TimeRNN
from handrnn.lstm import LSTM, TimeLSTM

__all__ = ["GRU", "LSTM", "RNN", "TimeGRU", "TimeLSTM", "TimeRNN", "__version__"]
__version__ = "0.1.0"
