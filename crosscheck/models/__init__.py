"""Plain NumPy models of the layer kinds, one module each (rnn, lstm, gru).

Each computes what a layer of its kind gives on a case, written from the formulas and
sharing no code with the layers judged: the float32 twin of a careful layer, and for
the gated kinds also the variants that make one known mistake (`MISTAKES`, `simulate`).
"""
