"""Writes tests/data/flax_fixtures/*.msgpack in Flax's format, as flax.serialization.to_bytes
would (see flax_msgpack.py), plus hand-framed variants Python's msgpack never picks itself.

Run from the repo root: /usr/bin/python3 tests/data/make_flax_fixtures.py
Values are simple closed forms (arange / 8, powers of two) that the C++ test recomputes.
"""
import os
import struct

import msgpack
import numpy as np

import flax_msgpack as fm

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flax_fixtures")


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def f32(n, shape, scale=0.125, offset=0.0):
    return (np.arange(n, dtype=np.float32) * np.float32(scale) + np.float32(offset)).reshape(shape)


def train_state():
    # Flax's MNIST TrainState layout, in Flax's insertion order (kernel before bias).
    params = {
        "Conv_0": {"kernel": f32(18, (3, 3, 1, 2)), "bias": np.array([0.5, -0.25], np.float32)},
        "Dense_0": {"kernel": f32(6, (2, 3), 1.0, -1.0), "bias": np.zeros(3, np.float32)},
    }
    trace = {
        "Conv_0": {"kernel": f32(18, (3, 3, 1, 2), 0.5), "bias": np.array([1, 2], np.float32)},
        "Dense_0": {"kernel": np.full((2, 3), 0.75, np.float32),
                    "bias": np.array([-1, 0, 1], np.float32)},
    }
    return {"step": np.array(3, np.int32), "params": params,
            "opt_state": {"0": {"trace": trace}, "1": {}}}


def main():
    os.makedirs(OUT, exist_ok=True)
    write("train_state.msgpack", fm.serialize(train_state()))
    # Python numbers as Flax writes them (e.g. TrainState.step before the first jitted step).
    write("plain_scalars.msgpack", fm.serialize(
        {"step": 7, "big": 3000000000, "neg": -5, "lr": 0.1, "flag": True, "f32": np.float32(2.5)}))
    write("dtypes.msgpack", fm.serialize({
        "f64": np.array([1.5, -2.25, 1e300]),
        "i32": np.array([-1, 2**31 - 1, -2**31], np.int32),
        "u32": np.array([0, 2**32 - 1], np.uint32),
        "b": np.array([True, False, True]),
        "empty": np.zeros((0, 3), np.float32),
        "zero_d": np.array(1.25, np.float32),   # payload of 16 bytes: fixext 16
        "big": f32(100, (10, 10)),              # payload over 255 bytes: ext 16
    }))
    # Flax's chunking with MAX_CHUNK_SIZE = 16 bytes: 4 float32 per chunk -> chunks 4, 4, 2.
    write("chunked.msgpack", fm.serialize({"emb": f32(10, (2, 5)), "small": f32(2, (2,))}, 16))
    write("list.msgpack", fm.serialize({"layers": [f32(2, (2,)), f32(3, (3,))]}))
    write("int64.msgpack", fm.serialize({"params": {"x": np.arange(3, dtype=np.int64)}}))
    write("float16.msgpack", fm.serialize({"h": np.ones(2, np.float16)}))
    write("complex.msgpack", fm.serialize({"z": complex(1, 2)}))
    write("none.msgpack", fm.serialize({"a": None}))

    # Every ext framing on read: a 0-d float32 1.25 payload (16 bytes) framed as ext 8/16/32, and
    # an ndarray payload built from non-minimal encodings (array16 header, uint64 dims, the
    # dtype name as bin, the buffer as str as old msgpack wrote it).
    payload = fm.ndarray_to_bytes(np.array(1.25, np.float32))
    assert len(payload) == 16
    odd = (b"\xdc\x00\x03" + b"\x92\xcf" + struct.pack(">Q", 2) + b"\xd1\x00\x01" +
           b"\xc4\x07float32" + b"\xd9\x08" + np.array([3.0, -0.5], np.float32).tobytes())
    m = b"\x85"
    m += b"\xa5fix16" + b"\xd8\x01" + payload
    m += b"\xa4ext8" + b"\xc7\x10\x01" + payload
    m += b"\xa5ext16" + b"\xc8\x00\x10\x01" + payload
    m += b"\xa5ext32" + b"\xc9\x00\x00\x00\x10\x01" + payload
    m += b"\xa3odd" + b"\xc7" + bytes([len(odd)]) + b"\x01" + odd
    assert set(msgpack.unpackb(m, ext_hook=fm.ext_unpack)) == {"fix16", "ext8", "ext16", "ext32", "odd"}
    write("framings.msgpack", m)
    # fixext 1/2/4/8 carry a type code and too few bytes for an ndarray: valid msgpack, bad arrays.
    for n, tag in ((1, 0xd4), (2, 0xd5), (4, 0xd6), (8, 0xd7)):
        write(f"fixext{n}.msgpack", b"\x81\xa1a" + bytes([tag, 1]) + bytes(n))


if __name__ == "__main__":
    main()
