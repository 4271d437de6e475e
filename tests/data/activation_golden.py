#!/usr/bin/python3
"""Golden values for tests/activation_test.cpp, from NumPy (float64) and Python's math.erf.

The formulas are jax.nn's definitions written independently in NumPy. Run:
  /usr/bin/python3 tests/data/activation_golden.py
and paste the printed arrays into the test.
"""
import math
import numpy as np

x = np.array([-20.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 20.0])
sig = 1.0 / (1.0 + np.exp(-x))
erf = np.array([math.erf(v / math.sqrt(2.0)) for v in x])
alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
out = {
    "sigmoid": sig,
    "log_sigmoid": -np.logaddexp(0.0, -x),
    "softplus": np.logaddexp(x, 0.0),
    "silu": x * sig,
    "gelu_tanh": 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "gelu_exact": x * (1 + erf) / 2,
    "elu": np.where(x > 0, x, np.expm1(x)),
    "celu_a2": np.maximum(x, 0) + 2.0 * np.expm1(np.minimum(x, 0) / 2.0),
    "selu": scale * np.where(x > 0, x, alpha * np.expm1(x)),
    "hard_silu": x * np.clip(x + 3, 0, 6) / 6,
}
for k, v in out.items():
    print("  // %s\n  {%s}," % (k, ", ".join("%.17g" % t for t in v)))

z = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 1000.0]])
sm = np.exp(z - z.max(-1, keepdims=True))
sm /= sm.sum(-1, keepdims=True)
print("softmax rows", ", ".join("%.17g" % t for t in sm.ravel()))
sh = z - z.max(-1, keepdims=True)
ls = sh - np.log(np.exp(sh).sum(-1, keepdims=True))
print("log_softmax rows", ", ".join("%.17g" % t for t in ls.ravel()))
sm0 = np.exp(z - z.max(0, keepdims=True))
sm0 /= sm0.sum(0, keepdims=True)
print("softmax axis0", ", ".join("%.17g" % t for t in sm0.ravel()))
m = z.mean(-1, keepdims=True)
v = (z**2).mean(-1, keepdims=True) - m**2
print("standardize", ", ".join("%.17g" % t for t in ((z - m) / np.sqrt(v + 1e-5)).ravel()))
