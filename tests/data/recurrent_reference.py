#!/usr/bin/python3
"""NumPy reference for tests/recurrent_test.cpp: one LSTM, GRU, MGU and Simple step.

The equations are those of flax/linen/recurrent.py's docstrings. Inputs use the tests'
wave(shape, phase) = sin(0.37 * i + phase) (row-major flat index i), float64.
Run: /usr/bin/python3 tests/data/recurrent_reference.py  (values pasted into the test)
"""
import numpy as np


def wave(shape, phase):
    n = int(np.prod(shape))
    return np.sin(0.37 * np.arange(n) + phase).reshape(shape)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


B, I, H = 2, 3, 2
x = wave((B, I), 0.1)
c = wave((B, H), 0.2)
h = wave((B, H), 0.3)
# kernel (in, H) and bias (H,) of each Dense, phases as in the test.
K = {n: wave((I, H), 1.0 + k) for k, n in enumerate(["ii", "if", "ig", "io"])}
R = {n: wave((H, H), 2.0 + k) for k, n in enumerate(["hi", "hf", "hg", "ho"])}
b = {n: wave((H,), 3.0 + k) for k, n in enumerate(["hi", "hf", "hg", "ho"])}
i = sig(x @ K["ii"] + h @ R["hi"] + b["hi"])
f = sig(x @ K["if"] + h @ R["hf"] + b["hf"])
g = np.tanh(x @ K["ig"] + h @ R["hg"] + b["hg"])
o = sig(x @ K["io"] + h @ R["ho"] + b["ho"])
c2 = f * c + i * g
h2 = o * np.tanh(c2)
np.set_printoptions(precision=17)
print("lstm c'", repr(c2.ravel().tolist()))
print("lstm h'", repr(h2.ravel().tolist()))

# GRU: ir, iz, in (kernel+bias), hr, hz (kernel), hn (kernel+bias)
Ki = {n: wave((I, H), 1.0 + k) for k, n in enumerate(["ir", "iz", "in"])}
bi = {n: wave((H,), 3.0 + k) for k, n in enumerate(["ir", "iz", "in"])}
Rh = {n: wave((H, H), 2.0 + k) for k, n in enumerate(["hr", "hz", "hn"])}
bhn = wave((H,), 4.5)
r = sig(x @ Ki["ir"] + bi["ir"] + h @ Rh["hr"])
z = sig(x @ Ki["iz"] + bi["iz"] + h @ Rh["hz"])
n = np.tanh(x @ Ki["in"] + bi["in"] + r * (h @ Rh["hn"] + bhn))
print("gru h'", repr(((1 - z) * n + z * h).ravel().tolist()))

# MGU (reset_gate): if (kernel+bias), hf (kernel), hn (kernel+bias), in (kernel+bias)
f = sig(x @ Ki["ir"] + bi["ir"] + h @ Rh["hr"])
n = np.tanh(x @ Ki["in"] + bi["in"] + f * (h @ Rh["hn"] + bhn))
print("mgu h'", repr(((1 - f) * n + f * h).ravel().tolist()))

# Simple, residual: i (kernel+bias), h (kernel)
print("simple h'", repr(np.tanh(x @ Ki["ir"] + bi["ir"] + h @ Rh["hr"] + h).ravel().tolist()))
