"""Pete's TimeRNN: forward never returns (an endless loop)."""

import numpy as np


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.h, self.dh, self.stateful = None, None, stateful

    def forward(self, xs):
        t = 0
        while t < xs.shape[1]:  # t is never incremented
            pass

    def set_state(self, h):
        self.h = h

    def reset_state(self):
        self.h = None
