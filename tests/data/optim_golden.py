#!/usr/bin/python3
"""Golden values for tests/optim_test.cpp: optax's update equations (optax/_src/transform.py,
alias.py), written out in NumPy float64 independently of loom. Run: /usr/bin/python3 this file.

Params {"b": [0.3], "w": [1.0, -2.0, 0.5]}; three steps with the gradients G below."""
import numpy as np

np.set_printoptions(precision=17)
P = {"b": np.array([0.3]), "w": np.array([1.0, -2.0, 0.5])}
G = [{"b": np.array([0.2]), "w": np.array([0.5, -1.0, 0.25])},
     {"b": np.array([-0.1]), "w": np.array([0.1, 0.2, -0.3])},
     {"b": np.array([0.05]), "w": np.array([-0.4, 0.6, 0.0])}]
K = ["b", "w"]


def run(step):
    p = {k: P[k].copy() for k in K}
    st = {}
    for t, g in enumerate(G, start=1):
        u = step(g, st, p, t)
        p = {k: p[k] + u[k] for k in K}
    return p, st


def adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, mask=None):
    def step(g, st, p, t):
        u = {}
        for k in K:
            m = st.get("mu" + k, 0 * g[k]); v = st.get("nu" + k, 0 * g[k])
            m = (1 - b1) * g[k] + b1 * m; v = (1 - b2) * g[k] ** 2 + b2 * v
            st["mu" + k], st["nu" + k] = m, v
            x = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
            if wd and (mask is None or mask[k]):
                x = x + wd * p[k]
            u[k] = -lr * x
        return u
    return step


def rmsprop(lr, decay=0.9, eps=1e-8, bias_correction=False):
    def step(g, st, p, t):
        u = {}
        for k in K:
            v = (1 - decay) * g[k] ** 2 + decay * st.get("nu" + k, 0 * g[k])
            st["nu" + k] = v
            v_hat = v / (1 - decay ** t) if bias_correction else v
            u[k] = -lr * g[k] / np.sqrt(v_hat + eps)
        return u
    return step


def adagrad(lr, init=0.1, eps=1e-7):
    def step(g, st, p, t):
        u = {}
        for k in K:
            s = g[k] ** 2 + st.get("s" + k, 0 * g[k] + init)
            st["s" + k] = s
            u[k] = -lr * g[k] / np.sqrt(s + eps)
        return u
    return step


def lamb(lr, b1=0.9, b2=0.999, eps=1e-6, wd=0.0):
    inner = adam(1.0, b1, b2, eps, wd)
    def step(g, st, p, t):
        a = inner(g, st, p, t)  # = -(adam direction + wd p)
        u = {}
        for k in K:
            x = -a[k]
            pn, un = np.linalg.norm(p[k]), np.linalg.norm(x)
            r = 1.0 if pn == 0 or un == 0 else pn / un
            u[k] = -lr * r * x
        return u
    return step


def lion(lr, b1=0.9, b2=0.99, wd=1e-3):
    def step(g, st, p, t):
        u = {}
        for k in K:
            m = st.get("mu" + k, 0 * g[k])
            x = np.sign((1 - b1) * g[k] + b1 * m) + wd * p[k]
            st["mu" + k] = (1 - b2) * g[k] + b2 * m
            u[k] = -lr * x
        return u
    return step


for name, step in [("adam", adam(0.1)), ("adamw", adam(0.1, wd=0.01)),
                   ("adamw_mask_w_only", adam(0.1, wd=0.01, mask={"b": False, "w": True})),
                   ("rmsprop", rmsprop(0.1)),
                   ("rmsprop_bias_correction", rmsprop(0.1, bias_correction=True)), ("adagrad", adagrad(0.1)),
                   ("lamb", lamb(0.1, wd=0.01)), ("lion", lion(0.1))]:
    p, st = run(step)
    print(name, "b", repr(p["b"]), "w", repr(p["w"]))
    for key in sorted(st):
        print("   ", key, repr(st[key]))
