#!/usr/bin/python3
"""Generates tests/data/lax_golden.txt: NumPy reference values for tests/lax_test.cpp.

Run from the repository root:  /usr/bin/python3 tests/data/lax_golden.py > tests/data/lax_golden.txt

conv_ref follows XLA's ConvGeneralDilated definition with Flax's layout (lhs NHWC, rhs HWIO):
dilate lhs by lhs_dilation (zeros between elements), pad (low, high) per spatial dim, dilate the
kernel by rhs_dilation, slide with window_strides, and split channels into feature groups.
SAME padding is computed as jax.lax.padtype_to_pads does. reduce_window_ref pads with the op's
identity; its max/min gradient follows XLA's select_and_scatter (first element in row-major
window order that the `ge`/`le` select keeps; padding is never selected). The library never
runs this script; the tests read the text file it writes.
"""
import itertools
import numpy as np


def same_pads(in_sizes, window, strides):
    pads = []
    for i, w, s in zip(in_sizes, window, strides):
        out = -(-i // s)
        total = max((out - 1) * s + w - i, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def pad_crop(x, axis, lo, hi, value=0.0):
    # Negative padding crops, as XLA's Pad does.
    if lo < 0:
        x = np.take(x, range(-lo, x.shape[axis]), axis=axis)
        lo = 0
    if hi < 0:
        x = np.take(x, range(0, x.shape[axis] + hi), axis=axis)
        hi = 0
    widths = [(0, 0)] * x.ndim
    widths[axis] = (lo, hi)
    return np.pad(x, widths, constant_values=value)


def conv_ref(x, w, strides, padding, lhs_dil, rhs_dil, groups):
    ns = x.ndim - 2
    n, c = x.shape[0], x.shape[-1]
    ks, cg, o = w.shape[:ns], w.shape[-2], w.shape[-1]
    eff_k = [(k - 1) * d + 1 for k, d in zip(ks, rhs_dil)]
    if padding == "same":
        pads = same_pads(x.shape[1:-1], eff_k, strides)
    elif padding == "valid":
        pads = [(0, 0)] * ns
    else:
        pads = padding
    dil_shape = [n] + [(s - 1) * d + 1 for s, d in zip(x.shape[1:-1], lhs_dil)] + [c]
    xd = np.zeros(dil_shape)
    xd[(slice(None),) + tuple(slice(None, None, d) for d in lhs_dil) + (slice(None),)] = x
    for i, (lo, hi) in enumerate(pads):
        xd = pad_crop(xd, i + 1, lo, hi)
    wd = np.zeros(eff_k + [cg, o])
    wd[tuple(slice(None, None, d) for d in rhs_dil) + (slice(None), slice(None))] = w
    out_sp = [(xd.shape[1 + i] - eff_k[i]) // strides[i] + 1 for i in range(ns)]
    out = np.zeros([n] + out_sp + [o])
    og = o // groups
    for pos in itertools.product(*[range(s) for s in out_sp]):
        sl = tuple(slice(p * s, p * s + k) for p, s, k in zip(pos, strides, eff_k))
        win = xd[(slice(None),) + sl + (slice(None),)]  # (n, k..., c)
        for g in range(groups):
            wg = win[..., g * cg:(g + 1) * cg]
            kg = wd[..., g * og:(g + 1) * og]
            out[(slice(None),) + pos + (slice(g * og, (g + 1) * og),)] = np.tensordot(
                wg, kg, axes=(list(range(1, ns + 2)), list(range(ns + 1))))
    return out, pads


def reduce_window_ref(x, op, window, strides, padding):
    if padding == "same":
        pads = same_pads(x.shape, window, strides)
    elif padding == "valid":
        pads = [(0, 0)] * x.ndim
    else:
        pads = padding
    out_shape = [(s + lo + hi - w) // st + 1 for s, (lo, hi), w, st in zip(x.shape, pads, window, strides)]
    out = np.zeros(out_shape)
    grad_w = np.cos(np.arange(np.prod(out_shape)).reshape(out_shape) * 0.7) + 1.5
    gx = np.zeros(x.shape)
    for pos in itertools.product(*[range(s) for s in out_shape]):
        vals, idxs = [], []
        for wpos in itertools.product(*[range(w) for w in window]):
            idx = tuple(p * st - lo + k for p, st, (lo, _), k in zip(pos, strides, pads, wpos))
            if all(0 <= i < s for i, s in zip(idx, x.shape)):
                vals.append(x[idx])
                idxs.append(idx)
        if op == "sum":
            out[pos] = sum(vals)
            for i in idxs:
                gx[i] += grad_w[pos]
        else:
            ident = -np.inf if op == "max" else np.inf
            out[pos] = (max if op == "max" else min)(vals) if vals else ident
            if idxs:
                sel = 0
                for j in range(1, len(vals)):
                    keep = vals[sel] >= vals[j] if op == "max" else vals[sel] <= vals[j]
                    if not keep:
                        sel = j
                gx[idxs[sel]] += grad_w[pos]
    return out, gx


def emit(name, **fields):
    print("case", name)
    for k, v in fields.items():
        if isinstance(v, np.ndarray):
            print(k + "_shape", *v.shape)
            print(k, *[repr(float(t)) for t in v.ravel()])
        elif isinstance(v, str):
            print(k, v)
        else:
            print(k, *v)
    print("end")


def data(shape, seed):
    n = int(np.prod(shape))
    return np.round(np.sin(np.arange(n) * 0.731 + seed) * 2.0, 3).reshape(shape)


CONV_CASES = [
    # name, lhs shape, rhs shape, strides, padding, lhs_dil, rhs_dil, groups
    ("same_3x3", (2, 5, 5, 3), (3, 3, 3, 4), (1, 1), "same", (1, 1), (1, 1), 1),
    ("same_stride2_even", (1, 6, 6, 2), (3, 3, 2, 3), (2, 2), "same", (1, 1), (1, 1), 1),
    ("same_stride2_4x4", (1, 7, 6, 2), (4, 4, 2, 2), (2, 2), "same", (1, 1), (1, 1), 1),
    ("valid_rect", (2, 6, 5, 2), (2, 3, 2, 3), (1, 2), "valid", (1, 1), (1, 1), 1),
    ("explicit_asym", (1, 5, 5, 2), (3, 2, 2, 2), (2, 1), [(2, 0), (1, 3)], (1, 1), (1, 1), 1),
    ("negative_pad", (1, 6, 6, 1), (2, 2, 1, 2), (1, 1), [(-1, 0), (0, -2)], (1, 1), (1, 1), 1),
    ("rhs_dilation", (1, 7, 7, 2), (3, 3, 2, 2), (1, 1), "same", (1, 1), (2, 2), 1),
    ("lhs_dilation", (1, 3, 4, 2), (3, 3, 2, 2), (1, 1), [(2, 2), (1, 2)], (2, 3), (1, 1), 1),
    ("groups2", (2, 4, 4, 4), (3, 3, 2, 6), (1, 1), "same", (1, 1), (1, 1), 2),
    ("depthwise", (1, 5, 5, 3), (3, 3, 1, 3), (2, 2), "same", (1, 1), (1, 1), 3),
    ("conv1x1", (2, 3, 4, 5), (1, 1, 5, 3), (1, 1), "valid", (1, 1), (1, 1), 1),
    ("conv1x1_stride2", (1, 5, 5, 2), (1, 1, 2, 3), (2, 2), "same", (1, 1), (1, 1), 1),
    ("conv1d", (2, 9, 2), (3, 2, 3), (2,), "same", (1,), (2,), 1),
    ("conv3d", (1, 4, 3, 5, 2), (2, 2, 3, 2, 2), (1, 2, 1), "same", (1, 1, 1), (1, 1, 1), 1),
]

POOL_CASES = [
    # name, shape, op, window, strides, padding
    ("max_2x2", (2, 4, 4, 3), "max", (1, 2, 2, 1), (1, 2, 2, 1), "valid"),
    ("max_3x3_s2_same", (1, 5, 5, 2), "max", (1, 3, 3, 1), (1, 2, 2, 1), "same"),
    ("min_3x3_s1_same", (1, 4, 5, 2), "min", (1, 3, 3, 1), (1, 1, 1, 1), "same"),
    ("sum_3x3_s2_same", (2, 5, 4, 2), "sum", (1, 3, 3, 1), (1, 2, 2, 1), "same"),
    ("sum_1d_explicit", (7,), "sum", (3,), (2,), [(2, 1)]),
    ("max_all_dims", (3, 4, 5), "max", (2, 2, 3), (1, 2, 2), [(1, 0), (0, 1), (1, 1)]),
]


def main():
    for name, ls, rs, st, pad, ld, rd, g in CONV_CASES:
        x, w = data(ls, 0.3), data(rs, 1.1)
        out, pads = conv_ref(x, w, st, pad, ld, rd, g)
        padding = pad if isinstance(pad, str) else "explicit " + " ".join(f"{lo} {hi}" for lo, hi in pad)
        emit("conv_" + name, lhs=x, rhs=w, strides=st, padding=padding, lhs_dil=ld, rhs_dil=rd,
             groups=[g], out=out)
    for name, shape, op, win, st, pad in POOL_CASES:
        # Rounded to 0.5 so that windows contain ties (tie-breaking is part of the contract).
        x = np.round(data(shape, 0.9) * 2) / 2
        out, gx = reduce_window_ref(x, op, win, st, pad)
        padding = pad if isinstance(pad, str) else "explicit " + " ".join(f"{lo} {hi}" for lo, hi in pad)
        emit("pool_" + name, x=x, op=op, window=win, strides=st, padding=padding, out=out, grad=gx)


if __name__ == "__main__":
    main()
