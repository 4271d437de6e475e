"""Decodes a file as flax.serialization.msgpack_restore would and prints every leaf.

Usage: flax_decode.py FILE [MAX_CHUNK_SIZE]
Prints one line per leaf, in file order: "path dtype shape values" (values as a Python list for
up to 16 elements, else "sum=<sum> first=<first 4>"), then "reencode_identical True|False":
whether re-encoding the decoded tree as Flax's msgpack_serialize (chunking above MAX_CHUNK_SIZE)
gives the file's bytes exactly, i.e. whether the writer made Flax's every framing choice.
Exits 77 when python3-msgpack or numpy is missing (the test skips then).
"""
import sys

try:
    import numpy as np
    import flax_msgpack as fm
except ImportError as e:
    print("missing:", e)
    sys.exit(77)


def walk(tree, path, out):
    if isinstance(tree, dict):
        for k, v in tree.items():
            if not isinstance(k, str):
                raise SystemExit(f"non-string key {k!r} at {path}")
            walk(v, path + [k], out)
    else:
        out.append(("/".join(path), tree))


def main():
    data = open(sys.argv[1], "rb").read()
    max_chunk = int(sys.argv[2]) if len(sys.argv) > 2 else fm.MAX_CHUNK_SIZE
    tree = fm.restore(data)
    leaves = []
    walk(tree, [], leaves)
    for path, leaf in leaves:
        if not isinstance(leaf, np.ndarray):
            print(path, type(leaf).__name__, repr(leaf))
            continue
        vals = leaf.reshape(-1).tolist()
        text = repr(vals) if len(vals) <= 16 else f"sum={leaf.sum(dtype=np.float64)!r} first={vals[:4]!r}"
        print(path, leaf.dtype.name, tuple(leaf.shape), text)
    again = fm.serialize(fm.restore(data), max_chunk)
    print("reencode_identical", again == data)


if __name__ == "__main__":
    main()
