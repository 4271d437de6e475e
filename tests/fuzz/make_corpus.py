"""Seeds tests/fuzz/corpus/: the Flax fixtures, truncations of them, and hostile framings.

Run from the repo root after tests/data/make_flax_fixtures.py:
  /usr/bin/python3 tests/fuzz/make_corpus.py
Crashers found by `make fuzz` are added here by hand (named crash-*), after they are fixed.
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "data", "flax_fixtures")
OUT = os.path.join(HERE, "corpus")

HOSTILE = {
    "map32_huge": "df ffffffff a1 61 00",
    "array32_huge": "dd ffffffff 00",
    "ext32_huge": "c9 ffffffff 01 93",
    "str32_key_huge": "81 db ffffffff 61",
    "shape_overflow": "c7 1a 01 93 92 ce80000000 ce80000000 a7 666c6f61743332 c4 04 00000000",
    "bin32_huge": "c7 0f 01 93 90 a7 666c6f61743332 c6 ffffffff",
    "rank9": "c7 10 01 93 99 0102030405060708 09 a4 626f6f6c",
    "negative_dim": "c7 0d 01 93 91 ff a7 666c6f61743332 c4 00",
    "chunk_mismatch": "83 b9 5f5f6d73677061636b5f6368756e6b65645f61727261795f5f c3 a5 7368617065 81 a1 30 05"
                      " a6 6368756e6b73 81 a1 30 c7 11 01 93 91 01 a7 666c6f61743332 c4 04 0000803f",
    "duplicate_key": "82 a1 61 00 a1 61 01",
    "int_key": "81 01 00",
    "bad_utf8": "81 a1 ff 00",
    "unknown_ext": "81 a1 61 d4 05 00",
    "bool_bytes": "c7 0c 01 93 91 02 a4 626f6f6c c4 02 07 00",
    "extra_data": "80 c0",
    "never_used": "c1",
    "float64": "cb 3ff0000000000000",
    "uint64_max": "cf ffffffffffffffff",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in sorted(os.listdir(FIX)):
        shutil.copy(os.path.join(FIX, name), os.path.join(OUT, name))
    for name in ("train_state.msgpack", "chunked.msgpack", "framings.msgpack"):
        data = open(os.path.join(FIX, name), "rb").read()
        for cut in (1, len(data) // 3, len(data) // 2, len(data) - 1):
            with open(os.path.join(OUT, f"trunc{cut}_{name}"), "wb") as f:
                f.write(data[:cut])
    for name, h in HOSTILE.items():
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(bytes.fromhex(h.replace(" ", "")))
    with open(os.path.join(OUT, "deep_nesting.bin"), "wb") as f:
        f.write(b"\x81\xa0" * 150)


if __name__ == "__main__":
    main()
