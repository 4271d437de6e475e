#!/usr/bin/python3
"""NumPy reference values pasted into tests/normalization_test.cpp (run: /usr/bin/python3
tests/data/normalization_golden.py). Inputs are loom::testing::wave(shape, phase):
sin(0.37 i + phase) in row-major order, float64. The formulas are the textbook definitions
(two-pass variance), written from the papers / Flax's docstrings, not from loom."""
import numpy as np


def wave(shape, phase):
    n = int(np.prod(shape))
    return np.sin(0.37 * np.arange(n) + phase).reshape(shape)


def norm(x, axes, eps):
    m = x.mean(axis=axes, keepdims=True)
    v = x.var(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def show(name, a):
    print(f"// {name} shape {a.shape}")
    print("{" + ", ".join(f"{v:.15g}" for v in np.ravel(a)) + "}")


# LayerNorm over (1, 2), features on -1, scale 1 + 0.1 k, bias 0.5 - 0.2 k.
x = wave((2, 3, 4), 0.3)
s = 1 + 0.1 * np.arange(4)
b = 0.5 - 0.2 * np.arange(4)
show("layernorm_12", norm(x, (1, 2), 1e-6) * s + b)
# LayerNorm default (last axis), eps 1e-6, no params used (scale 1, bias 0).
show("layernorm_last", norm(x, -1, 1e-6))
# RMSNorm last axis, scale 1 + 0.1 k.
show("rmsnorm_last", x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * s)
# BatchNorm on (4, 3): batch stats over axis 0, eps 1e-5, momentum 0.9.
xb = wave((4, 3), 1.1)
sb = np.array([2.0, 0.5, 1.5])
bb = np.array([0.1, -0.2, 0.3])
show("batchnorm_train", norm(xb, 0, 1e-5) * sb + bb)
show("batchnorm_ra_mean", 0.9 * 0 + 0.1 * xb.mean(0))
show("batchnorm_ra_var", 0.9 * 1 + 0.1 * xb.var(0))
# BatchNorm eval with stored mean m, var v.
m = np.array([0.2, -0.1, 0.05])
v = np.array([0.5, 2.0, 1.5])
show("batchnorm_eval", (xb - m) / np.sqrt(v + 1e-5) * sb + bb)
# GroupNorm (2, 2, 6), 3 groups of 2 channels, stats over axis 1 and the group, eps 1e-6.
xg = wave((2, 2, 6), 0.7)
xr = xg.reshape(2, 2, 3, 2)
sg = 1 + 0.1 * np.arange(6)
bg = 0.5 - 0.2 * np.arange(6)
show("groupnorm", norm(xr, (1, 3), 1e-6).reshape(2, 2, 6) * sg + bg)
# InstanceNorm (2, 3, 2): stats over axis 1 per example and channel.
xi = wave((2, 3, 2), 0.2)
show("instancenorm", norm(xi, 1, 1e-6) * np.array([1.5, 0.5]) + np.array([0.25, -0.25]))
