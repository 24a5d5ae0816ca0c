"""Nick's TimeRNN: a syntax error (a missing colon)."""

import numpy as np


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False)
        self.params = [Wx, Wh, b]
