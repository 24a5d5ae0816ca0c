"""Olga's layer: the class is spelled TimeRnn, and the task asks for TimeRNN."""

import numpy as np


class RNN:
    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]


class TimeRnn:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
