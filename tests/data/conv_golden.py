#!/usr/bin/python3
"""Generates tests/data/conv_golden.txt: NumPy reference values for tests/conv_test.cpp and
tests/pooling_test.cpp (nn::Conv, nn::ConvTranspose and the pooling functions).

Run from the repository root:  /usr/bin/python3 tests/data/conv_golden.py > tests/data/conv_golden.txt

The layers' semantics are written down from flax/linen/linear.py, flax/linen/pooling.py and
jax.lax.conv_transpose (jax/_src/lax/convolution.py):
- Conv: several leading batch dims are flattened and restored, an unbatched input gets a batch
  dim; CIRCULAR / REFLECT pad each spatial dim by ((kd - 1) // 2, kd // 2) with kd the dilated
  kernel size, using NumPy's np.pad modes "wrap" / "reflect", then a VALID conv; CAUSAL left-pads
  the one spatial dim by dilation * (k - 1) with zeros; an int padding p is (p, p) per dim.
  The convolution itself is lax_golden.conv_ref (XLA's ConvGeneralDilated definition).
- ConvTranspose: computed here as a scatter, y[pa + i * s - j * d] += x[i] . w[j], with the
  (pa, pb) padding that lax.conv_transpose derives from SAME/VALID (explicit pairs are used as
  given); transpose_kernel flips the spatial axes and swaps the last two; CIRCULAR pads the
  VALID result to an odd number of periods (input size * stride) and sums the periods.
- Pooling: window reductions by direct enumeration (lax_golden.reduce_window_ref) over the
  window dims, avg_pool dividing by the window size or by the count of non-padding elements,
  pool() with an init value that pads and starts each window, as lax.reduce_window.
The library never runs this script; the tests read the text file it writes.
"""
import itertools
import numpy as np

from lax_golden import conv_ref, reduce_window_ref, emit, data, same_pads


def pad_str(pad):
    if isinstance(pad, str):
        return pad
    if isinstance(pad, int):
        return "int " + str(pad)
    return "pairs " + " ".join(f"{lo} {hi}" for lo, hi in pad)


def flax_conv(x, w, b, strides, padding, in_dil, k_dil, groups):
    ns = w.ndim - 2
    nb = x.ndim - (ns + 1)
    batch = x.shape[:nb]
    x = x.reshape((-1,) + x.shape[nb:])
    if padding in ("CIRCULAR", "REFLECT"):
        kd = [(k - 1) * d + 1 for k, d in zip(w.shape[:ns], k_dil)]
        pads = [(0, 0)] + [((k - 1) // 2, k // 2) for k in kd] + [(0, 0)]
        x = np.pad(x, pads, mode={"CIRCULAR": "wrap", "REFLECT": "reflect"}[padding])
        lax_pad = "valid"
    elif padding == "CAUSAL":
        x = np.pad(x, [(0, 0), (k_dil[0] * (w.shape[0] - 1), 0), (0, 0)])
        lax_pad = "valid"
    elif isinstance(padding, int):
        lax_pad = [(padding, padding)] * ns
    elif isinstance(padding, str):
        lax_pad = padding.lower()
    else:
        lax_pad = padding
    y, _ = conv_ref(x, w, strides, lax_pad, in_dil, k_dil, groups)
    if b is not None:
        y = y + b
    return y.reshape(batch + y.shape[1:])


def transpose_pads(k, s, padding):
    # lax.conv_transpose's _conv_transpose_padding, k the dilated kernel size.
    if padding == "SAME":
        pad_len = k + s - 2
        pad_a = k - 1 if s > k - 1 else int(np.ceil(pad_len / 2))
    else:  # VALID
        pad_len = k + s - 2 + max(k - s, 0)
        pad_a = k - 1
    return pad_a, pad_len - pad_a


def conv_transpose_scatter(x, w, strides, pads, k_dil):
    ns = x.ndim - 2
    ks = w.shape[:ns]
    out_sp = [(n - 1) * s + 1 + lo + hi - (k - 1) * d
              for n, s, (lo, hi), k, d in zip(x.shape[1:-1], strides, pads, ks, k_dil)]
    y = np.zeros((x.shape[0],) + tuple(out_sp) + (w.shape[-1],))
    for i in itertools.product(*[range(n) for n in x.shape[1:-1]]):
        for j in itertools.product(*[range(k) for k in ks]):
            o = tuple(p[0] + ii * s - jj * d for p, ii, s, jj, d in zip(pads, i, strides, j, k_dil))
            if all(0 <= oo < n for oo, n in zip(o, out_sp)):
                y[(slice(None),) + o] += x[(slice(None),) + i] @ w[j]
    return y


def flax_conv_transpose(x, w, b, strides, padding, k_dil, transpose_kernel):
    ns = w.ndim - 2
    nb = x.ndim - (ns + 1)
    batch = x.shape[:nb]
    x = x.reshape((-1,) + x.shape[nb:])
    if transpose_kernel:
        w = np.flip(w, axis=tuple(range(ns))).swapaxes(-1, -2)
    lax_pad = "VALID" if padding == "CIRCULAR" else padding
    if isinstance(lax_pad, str):
        kd = [(k - 1) * d + 1 for k, d in zip(w.shape[:ns], k_dil)]
        pads = [transpose_pads(k, s, lax_pad) for k, s in zip(kd, strides)]
    else:
        pads = lax_pad
    y = conv_transpose_scatter(x, w, strides, pads, k_dil)
    if padding == "CIRCULAR":
        periods = [n * s for n, s in zip(x.shape[1:-1], strides)]
        diffs = [-(yd - p) % (2 * p) for yd, p in zip(y.shape[1:-1], periods)]
        if transpose_kernel:
            tp = [(d // 2, (d + 1) // 2) for d in diffs]
        else:
            tp = [((d + 1) // 2, d // 2) for d in diffs]
        y = np.pad(y, [(0, 0)] + tp + [(0, 0)])
        for i in range(1, y.ndim - 1):
            y = y.reshape(y.shape[:i] + (-1, periods[i - 1]) + y.shape[i + 1:]).sum(axis=i)
    if b is not None:
        y = y + b
    return y.reshape(batch + y.shape[1:])


def window_pads(shape, window, strides, padding):
    if padding == "SAME":
        return same_pads(shape, window, strides)
    if padding == "VALID":
        return [(0, 0)] * len(shape)
    return padding


def flax_pool(x, op, window, strides, padding, init=None, count_include_pad=True):
    nw = len(window)
    nb = x.ndim - nw - 1
    win = (1,) * nb + tuple(window) + (1,)
    st = (1,) * nb + tuple(strides) + (1,)
    if isinstance(padding, str):
        pads = window_pads(x.shape, win, st, padding)
    else:
        pads = [(0, 0)] * nb + list(padding) + [(0, 0)]
    y, _ = reduce_window_ref(x, "sum" if op == "avg" else op, win, st, pads)
    count, _ = reduce_window_ref(np.ones(x.shape), "sum", win, st, pads)
    if op == "avg":
        return y / (np.prod(window) if count_include_pad else count)
    if init is not None:  # lax.reduce_window: padding elements and the start value are init
        n_pad = np.prod(window) - count
        if op == "sum":
            return y + init * (1 + n_pad)
        return np.maximum(y, init) if op == "max" else np.minimum(y, init)
    return y


CONV_CASES = [
    # name, x shape, kernel shape, strides, padding, input_dilation, kernel_dilation, groups, bias
    ("circular_2d_stride2", (2, 5, 6, 3), (3, 3, 3, 4), (2, 2), "CIRCULAR", (1, 1), (1, 1), 1, True),
    ("circular_1d_dil", (1, 7, 2), (4, 2, 3), (1,), "CIRCULAR", (1,), (2,), 1, True),
    ("circular_2d_even", (1, 5, 6, 2), (4, 2, 2, 3), (1, 2), "CIRCULAR", (1, 1), (1, 1), 1, True),
    ("reflect_1d_even", (2, 6, 2), (2, 2, 2), (1,), "REFLECT", (1,), (1,), 1, False),
    ("circular_pad_beyond_input", (2, 4, 1), (5, 1, 2), (1,), "CIRCULAR", (1,), (3,), 1, False),
    ("reflect_2d", (1, 5, 4, 2), (3, 3, 2, 2), (1, 1), "REFLECT", (1, 1), (1, 1), 1, True),
    ("causal_1d_dil2", (2, 8, 2), (3, 2, 3), (1,), "CAUSAL", (1,), (2,), 1, True),
    ("same_groups_dil", (2, 6, 6, 4), (3, 3, 2, 6), (2, 2), "SAME", (1, 1), (2, 1), 2, True),
    ("int_padding", (1, 5, 5, 2), (2, 3, 2, 2), (2, 1), 1, (1, 1), (1, 1), 1, True),
    ("input_dilation", (1, 3, 4, 2), (3, 2, 2, 3), (1, 1), [(1, 1), (2, 0)], (2, 2), (1, 1), 1, True),
    ("multibatch_1d", (2, 3, 6, 2), (3, 2, 4), (1,), "VALID", (1,), (1,), 1, True),
    ("unbatched_3d", (4, 3, 5, 2), (2, 2, 3, 2, 3), (1, 1, 1), "SAME", (1, 1, 1), (1, 1, 1), 1, True),
]

TRANSPOSE_CASES = [
    # name, x shape, kernel shape, strides, padding, kernel_dilation, transpose_kernel, bias
    ("same_stride2", (1, 4, 3, 2), (3, 3, 2, 3), (2, 2), "SAME", (1, 1), False, True),
    ("same_k2_stride3", (2, 3, 2), (2, 2, 2), (3,), "SAME", (1,), False, True),
    ("valid_stride3_dil", (2, 5, 2), (4, 2, 3), (3,), "VALID", (2,), False, False),
    ("explicit_pairs", (1, 3, 4, 2), (3, 2, 2, 2), (2, 1), [(1, 2), (0, 1)], (1, 2), False, True),
    ("transpose_kernel_same", (1, 3, 3, 2), (3, 3, 4, 2), (2, 2), "SAME", (1, 1), True, True),
    ("circular_2d_k4", (1, 3, 4, 2), (4, 4, 2, 2), (2, 2), "CIRCULAR", (1, 1), False, True),
    ("circular_1d_transposed", (2, 4, 3), (5, 2, 3), (3,), "CIRCULAR", (1,), True, False),
    ("multibatch_valid", (2, 2, 5, 2), (3, 2, 3), (1,), "VALID", (1,), False, True),
]

POOL_CASES = [
    # name, x shape, op, window, strides, padding, init, count_include_pad
    ("avg_same_excl", (2, 5, 5, 3), "avg", (3, 3), (2, 2), "SAME", None, False),
    ("avg_same_incl", (2, 5, 5, 3), "avg", (3, 3), (2, 2), "SAME", None, True),
    ("avg_pairs_excl", (1, 4, 5, 2), "avg", (2, 3), (1, 2), [(1, 0), (2, 1)], None, False),
    ("avg_unbatched_excl", (5, 4, 2), "avg", (2, 2), (1, 1), [(1, 1), (0, 1)], None, False),
    ("avg_multibatch_excl", (2, 3, 5, 2), "avg", (3,), (2,), "SAME", None, False),
    ("max_multibatch_same", (2, 2, 5, 4, 2), "max", (2, 3), (2, 1), "SAME", None, True),
    ("min_unbatched", (5, 6, 2), "min", (2, 2), (2, 2), "VALID", None, True),
    ("sum_init_same", (1, 4, 4, 2), "sum", (3, 3), (1, 1), "SAME", 1.5, True),
    ("max_init", (1, 4, 3, 2), "max", (2, 2), (1, 1), "VALID", 0.25, True),
]


def main():
    for name, xs, ws, st, pad, idl, kdl, g, bias in CONV_CASES:
        x, w = data(xs, 0.3), data(ws, 1.1)
        b = data((ws[-1],), 2.0) if bias else None
        y = flax_conv(x, w, b, st, pad, idl, kdl, g)
        fields = dict(x=x, kernel=w)
        if bias:
            fields["bias"] = b
        emit("conv_" + name, **fields, strides=st, padding=pad_str(pad), input_dilation=idl,
             kernel_dilation=kdl, groups=[g], out=y)
    for name, xs, ws, st, pad, kdl, tk, bias in TRANSPOSE_CASES:
        x, w = data(xs, 0.5), data(ws, 1.7)
        b = data((ws[-2] if tk else ws[-1],), 2.5) if bias else None
        y = flax_conv_transpose(x, w, b, st, pad, kdl, tk)
        fields = dict(x=x, kernel=w)
        if bias:
            fields["bias"] = b
        emit("convt_" + name, **fields, strides=st, padding=pad_str(pad), kernel_dilation=kdl,
             transpose_kernel=[int(tk)], out=y)
    for name, xs, op, win, st, pad, init, cip in POOL_CASES:
        # Rounded to 0.5 so that windows contain ties.
        x = np.round(data(xs, 0.9) * 2) / 2
        y = flax_pool(x, op, win, st, pad, init, cip)
        emit("pool_" + name, x=x, op=op, window=win, strides=st, padding=pad_str(pad),
             init=["none" if init is None else repr(init)], count_include_pad=[int(cip)], out=y)


if __name__ == "__main__":
    main()
