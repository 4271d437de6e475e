"""Flax's msgpack state-dict format (flax/serialization.py), restated with msgpack + numpy only.

Shared by make_flax_fixtures.py (writes fixtures as Flax would) and flax_decode.py (reads a file
as flax.serialization.msgpack_restore would). The format facts: arrays are ext type 1 holding
msgpack [shape, dtype name, C-order bytes] packed with use_bin_type=True; numpy scalars ext 3
with the same payload; Python complex ext 2 holding msgpack (real, imag); arrays over
MAX_CHUNK_SIZE bytes become {"__msgpack_chunked_array__": True, "shape": {"0": d0, ...},
"chunks": {"0": flat piece, ...}} with pieces of MAX_CHUNK_SIZE // itemsize elements.
"""
import msgpack
import numpy as np

MAX_CHUNK_SIZE = 2**30
CHUNKED = "__msgpack_chunked_array__"


def ndarray_to_bytes(arr):
    return msgpack.packb((arr.shape, arr.dtype.name, arr.tobytes("C")), use_bin_type=True)


def ndarray_from_bytes(data):
    shape, name, buf = msgpack.unpackb(data, raw=True)
    return np.frombuffer(buf, dtype=np.dtype(name.decode() if isinstance(name, bytes) else name),
                         count=-1, offset=0).reshape(shape, order="C")


def ext_pack(x):
    if isinstance(x, np.ndarray):
        return msgpack.ExtType(1, ndarray_to_bytes(x))
    if isinstance(x, np.generic):
        return msgpack.ExtType(3, ndarray_to_bytes(np.asarray(x)))
    if isinstance(x, complex):
        return msgpack.ExtType(2, msgpack.packb((x.real, x.imag)))
    return x


def ext_unpack(code, data):
    if code == 1:
        return ndarray_from_bytes(data)
    if code == 2:
        re, im = msgpack.unpackb(data)
        return complex(re, im)
    if code == 3:
        return ndarray_from_bytes(data)[()]
    return msgpack.ExtType(code, data)


def tuple_to_dict(t):
    return {str(i): v for i, v in enumerate(t)}


def dict_to_tuple(d):
    return tuple(d[str(i)] for i in range(len(d)))


def chunk(arr, max_chunk):
    size = max(1, int(max_chunk / arr.dtype.itemsize))
    flat = arr.reshape(-1)
    pieces = [flat[i:i + size] for i in range(0, flat.size, size)]
    return {CHUNKED: True, "shape": tuple_to_dict(arr.shape), "chunks": tuple_to_dict(pieces)}


def chunk_leaves(d, max_chunk=MAX_CHUNK_SIZE):
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(v, np.ndarray):
                if v.size * v.dtype.itemsize > max_chunk:
                    d[k] = chunk(v, max_chunk)
            elif isinstance(v, dict):
                chunk_leaves(v, max_chunk)
    elif isinstance(d, np.ndarray) and d.size * d.dtype.itemsize > max_chunk:
        return chunk(d, max_chunk)
    return d


def unchunk(d):
    return np.concatenate(dict_to_tuple(d["chunks"])).reshape(dict_to_tuple(d["shape"]))


def unchunk_leaves(d):
    if isinstance(d, dict):
        if CHUNKED in d:
            return unchunk(d)
        for k, v in d.items():
            if isinstance(v, dict) and CHUNKED in v:
                d[k] = unchunk(v)
            elif isinstance(v, dict):
                unchunk_leaves(v)
    return d


def serialize(tree, max_chunk=MAX_CHUNK_SIZE):
    """flax.serialization.msgpack_serialize."""
    return msgpack.packb(chunk_leaves(tree, max_chunk), default=ext_pack, strict_types=True)


def restore(data):
    """flax.serialization.msgpack_restore."""
    return unchunk_leaves(msgpack.unpackb(data, ext_hook=ext_unpack, raw=False,
                                          strict_map_key=False))
