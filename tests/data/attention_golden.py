#!/usr/bin/python3
"""Generates tests/data/attention_golden.txt: NumPy reference values for
tests/attention_test.cpp and tests/linear_general_test.cpp.

Run from the repository root:
  /usr/bin/python3 tests/data/attention_golden.py > tests/data/attention_golden.txt

The references follow the definitions in flax/linen/attention.py and flax/linen/linear.py,
written here in plain float64 NumPy:
  weights = softmax(q / sqrt(depth) @ k^T + bias, masked with finfo.min) over kv_length,
  out = weights @ v per (batch..., head);
  MultiHeadDotProductAttention = DenseGeneral q/k/v (features (heads, head_dim)), attention,
  DenseGeneral out over the last two axes; DenseGeneral = tensordot over `axis` (per batch
  element for batch_dims) + bias; Einsum = np.einsum + bias broadcast as Flax's _get_bias_shape.
Inputs and parameters are deterministic waves, written to the file too, so the C++ tests read
both the inputs and the expected values from it. The library never runs this script.
"""
import numpy as np


def data(shape, phase, scale=1.0):
    n = int(np.prod(shape))
    return (scale * np.sin(0.37 * np.arange(n) + phase)).reshape(shape)


def emit(name, **fields):
    print("case", name)
    for k, v in fields.items():
        v = np.asarray(v, dtype=np.float64)
        print(k + "_shape", *v.shape)
        print(k, *[repr(float(t)) for t in v.ravel()])
    print("end")


def softmax(x):
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def attention_weights(q, k, bias=None, mask=None):
    depth = q.shape[-1]
    w = np.einsum("...qhd,...khd->...hqk", q / np.sqrt(depth), k)
    if bias is not None:
        w = w + bias
    if mask is not None:
        w = np.where(mask != 0, w, np.finfo(np.float64).min)
    return softmax(w)


def attention(q, k, v, bias=None, mask=None):
    w = attention_weights(q, k, bias, mask)
    return np.einsum("...hqk,...khd->...qhd", w, v), w


def dense_general(x, kernel, bias, axis, batch_dims=()):
    nd = x.ndim
    axis = sorted(a % nd for a in axis)
    nb = len(batch_dims)
    if nb == 0:
        y = np.tensordot(x, kernel, axes=(axis, list(range(len(axis)))))
        return y + bias
    assert tuple(batch_dims) == (0,)
    y = np.stack([np.tensordot(x[i], kernel[i], axes=([a - 1 for a in axis],
                                                       list(range(len(axis)))))
                  for i in range(x.shape[0])])
    bshape = [x.shape[0]] + [1] * (y.ndim - 1 - (bias.ndim - 1)) + list(bias.shape[1:])
    return y + bias.reshape(bshape)


def main():
    # dot_product_attention: two batch axes? no -- one batch axis, 2 heads.
    q, k, v = data((2, 3, 2, 4), 0.1), data((2, 5, 2, 4), 0.7), data((2, 5, 2, 3), 1.3)
    out, w = attention(q, k, v)
    emit("dpa_basic", q=q, k=k, v=v, out=out, weights=w)

    # bias broadcast over batch; a mask broadcast over heads whose query row 1 of batch 0 is
    # entirely masked (uniform weights), and a causal-like pattern elsewhere.
    bias = data((1, 2, 3, 5), 2.1, 0.5)
    mask = np.ones((2, 1, 3, 5))
    mask[0, 0, 1, :] = 0
    mask[1, 0, :, 3:] = 0
    mask[0, 0, 2, 0] = 0
    out, w = attention(q, k, v, bias, mask)
    emit("dpa_bias_mask", q=q, k=k, v=v, bias=bias, mask=mask, out=out, weights=w)

    # No batch axes, and two batch axes.
    q3, k3, v3 = data((3, 2, 4), 0.2), data((4, 2, 4), 0.9), data((4, 2, 2), 1.7)
    out, w = attention(q3, k3, v3)
    emit("dpa_rank3", q=q3, k=k3, v=v3, out=out, weights=w)
    q5, k5, v5 = data((2, 2, 3, 1, 2), 0.4), data((2, 2, 2, 1, 2), 1.1), data((2, 2, 2, 1, 3), 0.6)
    out, w = attention(q5, k5, v5)
    emit("dpa_rank5", q=q5, k=k5, v=v5, out=out, weights=w)

    # MultiHeadDotProductAttention: inputs_q (2, 3, 5), inputs_kv (2, 4, 6), 2 heads,
    # qkv_features 4, out_features 3, with a padding mask.
    xq, xkv = data((2, 3, 5), 0.3), data((2, 4, 6), 0.8)
    qk, qb = data((5, 2, 2), 1.0, 0.6), data((2, 2), 1.9, 0.1)
    kk, kb = data((6, 2, 2), 2.0, 0.6), data((2, 2), 2.9, 0.1)
    vk, vb = data((6, 2, 2), 3.0, 0.6), data((2, 2), 3.9, 0.1)
    ok, ob = data((2, 2, 3), 4.0, 0.6), data((3,), 4.9, 0.1)
    key_valid = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=np.float64)
    mha_mask = (np.ones((2, 3))[:, :, None] * key_valid[:, None, :])[:, None, :, :]
    qp = dense_general(xq, qk, qb, (-1,))
    kp = dense_general(xkv, kk, kb, (-1,))
    vp = dense_general(xkv, vk, vb, (-1,))
    att, _ = attention(qp, kp, vp, mask=mha_mask)
    y = dense_general(att, ok, ob, (-2, -1))
    emit("mha", inputs_q=xq, inputs_kv=xkv, query_kernel=qk, query_bias=qb, key_kernel=kk,
         key_bias=kb, value_kernel=vk, value_bias=vb, out_kernel=ok, out_bias=ob,
         mask=mha_mask, out=y)

    # normalize_qk: LayerNorm (epsilon 1e-6, no bias, learned scale) of the projected query and
    # key over head_dim; 2 heads of depth 3.
    qk, qb = data((5, 2, 3), 1.0, 0.6), data((2, 3), 1.9, 0.1)
    kk, kb = data((6, 2, 3), 2.0, 0.6), data((2, 3), 2.9, 0.1)
    vk, vb = data((6, 2, 3), 3.0, 0.6), data((2, 3), 3.9, 0.1)
    ok, ob = data((2, 3, 3), 4.0, 0.6), data((3,), 4.9, 0.1)
    qs, ks = 1 + data((3,), 5.0, 0.3), 1 + data((3,), 6.0, 0.3)

    def layer_norm(x, scale):
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-6) * scale

    qp = layer_norm(dense_general(xq, qk, qb, (-1,)), qs)
    kp = layer_norm(dense_general(xkv, kk, kb, (-1,)), ks)
    vp = dense_general(xkv, vk, vb, (-1,))
    att, _ = attention(qp, kp, vp)
    y = dense_general(att, ok, ob, (-2, -1))
    emit("mha_qk_norm", inputs_q=xq, inputs_kv=xkv, query_kernel=qk, query_bias=qb,
         key_kernel=kk, key_bias=kb, value_kernel=vk, value_bias=vb, out_kernel=ok, out_bias=ob,
         query_ln_scale=qs, key_ln_scale=ks, out=y)

    # DenseGeneral: axis (1, -1), features (2, 3), without and with batch_dims (0,).
    x = data((2, 3, 4, 5), 0.5)
    kern = data((3, 5, 2, 3), 1.5, 0.4)
    b = data((2, 3), 2.5, 0.2)
    emit("dense_general", x=x, kernel=kern, bias=b, out=dense_general(x, kern, b, (1, -1)))
    kern_b = data((2, 3, 5, 2, 3), 1.6, 0.4)
    b_b = data((2, 2, 3), 2.6, 0.2)
    emit("dense_general_batch", x=x, kernel=kern_b, bias=b_b,
         out=dense_general(x, kern_b, b_b, (1, -1), (0,)))

    # Einsum: 'abc,cde->abde' and the ellipsis case 'd...ab,bc...->ad...c' of Flax's tests.
    x = data((3, 4, 5), 0.15)
    kern = data((5, 2, 3), 1.15, 0.5)
    b = data((2, 3), 2.15, 0.3)
    emit("einsum", x=x, kernel=kern, bias=b,
         out=np.einsum("abc,cde->abde", x, kern) + b.reshape(1, 1, 2, 3))
    x = data((2, 3, 2, 3, 4), 0.25)
    kern = data((4, 2, 3, 2), 1.25, 0.5)
    b = data((3, 2, 2), 2.25, 0.3)
    emit("einsum_ellipsis", x=x, kernel=kern, bias=b,
         out=np.einsum("d...ab,bc...->ad...c", x, kern) + b.reshape(1, 1, 3, 2, 2))


if __name__ == "__main__":
    main()
