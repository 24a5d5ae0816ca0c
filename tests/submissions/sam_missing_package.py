"""Sam's TimeRNN: imports a helper package that is not installed where it is graded."""

import numpy as np
from rnn_helpers_of_sam import tanh_grad  # exists only on Sam's laptop


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
