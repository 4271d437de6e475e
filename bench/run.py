#!/usr/bin/env python3
"""`make bench`: loom against PyTorch and libtorch on the CPU, side by side in one run.

Runs every workload of issue 10 for loom (build/bench/loom_workloads), PyTorch
(bench/peers/torch_bench.py) and libtorch (build/bench/peers/libtorch_bench) alternately, ROUNDS
rounds of each system (the order rotates every round), with the same thread count for all, and
prints one table: per workload each system's median time per iteration (all iterations of all
rounds pooled), loom/PyTorch, loom/libtorch and loom's GFLOP/s as a fraction of the machine's
sgemm peak measured in the same run (OpenBLAS, 2048^3 sgemm, best iteration). Writes
build/bench/results.json. Standard library only.

A workload named <base>_jit (cnn_train_jit, mlp_train_jit, transformer_train_jit) is loom's
<base> step under loom::jit. It runs for loom only (JSON: workload "<base>_jit", system "loom");
its table row compares it with the peers' (eager) times of <base>, which run as well when <base>
itself was not asked for.

  bench/run.py [--threads T] [--rounds R] [--workloads a,b] [--quick]
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEMS = ["loom", "pytorch", "libtorch"]
TORCH_PYTHON = "/usr/bin/python3"  # Debian's python3-torch lives in the system interpreter


def forward_flops_mlp(sizes, batch):
    return sum(2 * batch * a * b for a, b in zip(sizes, sizes[1:]))


def resnet18_flops(batch=8, size=64, classes=1000):
    """Multiply-adds x 2 of the convolutions and the head of ResNet-18 (Flax's v1.5)."""
    flops, h, c = 0, size // 2, 64
    flops += 2 * batch * h * h * 64 * 7 * 7 * 3  # stem, stride 2
    h = (h + 1) // 2  # max pool, stride 2, SAME
    for i in range(4):
        for j in range(2):
            cout, stride = 64 << i, (2 if i > 0 and j == 0 else 1)
            ho = (h + stride - 1) // stride
            flops += 2 * batch * ho * ho * cout * 9 * c  # conv 0
            flops += 2 * batch * ho * ho * cout * 9 * cout  # conv 1
            if stride != 1 or c != cout:
                flops += 2 * batch * ho * ho * cout * c  # projection
            h, c = ho, cout
    return flops + 2 * batch * c * classes


def transformer_flops(layers=2, b=16, n=128, d=256, mlp=1024):
    per_layer = 4 * 2 * b * n * d * d + 2 * 2 * b * n * n * d + 2 * 2 * b * n * d * mlp
    return 3 * layers * per_layer  # forward + the two backward GEMMs of each


def cnn_flops(batch=128):
    conv0 = 2 * batch * 28 * 28 * 32 * 9 * 1
    conv1 = 2 * batch * 14 * 14 * 64 * 9 * 32
    dense = 2 * batch * (3136 * 256 + 256 * 10)
    return 2 * (conv0 + conv1 + dense) + conv1 + dense  # conv0 needs no input gradient


def mlp_train_flops():
    f = forward_flops_mlp([784, 512, 512, 10], 128)
    return 2 * f + forward_flops_mlp([512, 512, 10], 128)


# name: (timed iterations per run, warmup, FLOP per reported unit, divisor, description)
# The divisor turns an iteration into the reported unit (concurrent_infer: per call, 2 x 100).
WORKLOADS = {
    "cnn_train": (10, 2, cnn_flops(), 1, "MNIST CNN step, batch 128"),
    "mlp_train": (30, 3, mlp_train_flops(), 1, "MLP 784-512-512-10 step, batch 128"),
    "mlp_infer_b1": (2000, 200, forward_flops_mlp([784, 128, 10], 1), 1,
                     "MLP 784-128-10 inference, batch 1"),
    "resnet_infer": (10, 2, resnet18_flops(), 1, "ResNet-18 inference, 8x64x64x3"),
    "transformer_train": (5, 1, transformer_flops(), 1, "2-layer encoder step, 16x128x256"),
    "concurrent_infer": (50, 5, forward_flops_mlp([784, 128, 10], 1), 200,
                         "mlp_infer_b1 from 2 threads, per call"),
    "loaded_cnn_train": (6, 1, cnn_flops(), 1, "cnn_train with one spinning process per core"),
}
# The jitted variants: loom only, compared with the base workload's peers.
for _base in ("cnn_train", "mlp_train", "transformer_train"):
    _it, _wu, _fl, _div, _desc = WORKLOADS[_base]
    WORKLOADS[_base + "_jit"] = (_it, _wu, _fl, _div, _desc + ", whole step under loom::jit")


def base_of(workload):
    """The workload whose peers a row compares with (itself unless a _jit variant)."""
    return workload[:-len("_jit")] if workload.endswith("_jit") else workload


def jobs(names, order):
    """(workload, system) pairs of one round: a _jit workload runs loom only, and the peers of
    its base run too when the base was not asked for (they are what its row compares with)."""
    out = []
    for w in names:
        if w.endswith("_jit"):
            base = base_of(w)
            if base not in names:
                out += [(base, s) for s in order if s != "loom" and (base, s) not in out]
            out.append((w, "loom"))
        else:
            out += [(w, s) for s in order]
    return out


def command(system, workload, args, build):
    peer_workload = "cnn_train" if workload == "loaded_cnn_train" else workload
    iters, warmup = WORKLOADS[workload][:2]
    if args.quick:
        iters, warmup = max(1, iters // 5), 1
    flags = ["--iters", str(iters), "--warmup", str(warmup), "--threads", str(args.threads)]
    if system == "loom":
        exe = [os.path.join(build, "bench", "loom_workloads")]
    elif system == "pytorch":
        exe = [TORCH_PYTHON, os.path.join(ROOT, "bench", "peers", "torch_bench.py")]
    else:
        exe = [os.path.join(build, "bench", "peers", "libtorch_bench")]
    return exe + [peer_workload] + flags


def run_one(cmd, env, timeout):
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if p.returncode != 0:
        return None, (p.stderr or p.stdout).strip()[-500:]
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line), None
    return None, "no JSON line in the output"


class Spinners:
    """One busy-looping process per core (loaded_cnn_train), started and stopped here."""

    def __init__(self, n):
        self.n, self.procs = n, []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()


def fmt_ms(v):
    if v is None:
        return "n/a"
    return f"{v:.4f}" if v < 1 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int,
                    default=int(os.environ.get("THREADS") or os.cpu_count() or 1))
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS") or 3))
    ap.add_argument("--workloads", default=os.environ.get("WORKLOADS", ""))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--quick", action="store_true", help="fewer iterations (a smoke test)")
    args = ap.parse_args()
    names = [w for w in args.workloads.split(",") if w] or list(WORKLOADS)
    for w in names:
        if w not in WORKLOADS:
            sys.exit(f"run.py: unknown workload {w!r}; known: {', '.join(WORKLOADS)}")

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    times = {}  # (workload, system) -> [ms per reported unit]
    rss = {}  # (workload, system) -> max peak RSS over runs
    runs = {}
    errors = {}
    sgemm = []
    n = 2048
    print(f"bench: {args.threads} threads, {args.rounds} rounds, load average "
          f"{os.getloadavg()[0]:.2f} at the start", flush=True)
    for r in range(args.rounds):
        res, err = run_one([os.path.join(args.build, "bench", "loom_workloads"), "sgemm_peak",
                            "--iters", "5", "--warmup", "1", "--threads", str(args.threads)],
                           env, 300)
        if res:
            sgemm.append(2.0 * n ** 3 / (min(res["times_ms"]) * 1e-3) / 1e9)
        else:
            errors["sgemm_peak"] = err
        order = SYSTEMS[r % 3:] + SYSTEMS[:r % 3]
        for w, s in jobs(names, order):
            divisor = WORKLOADS[w][3]
            cmd = command(s, w, args, args.build)
            if w == "loaded_cnn_train":
                with Spinners(os.cpu_count() or 1):
                    res, err = run_one(cmd, env, 900)
            else:
                res, err = run_one(cmd, env, 900)
            if res is None:
                errors[(w, s)] = err
                print(f"  round {r + 1} {w} {s}: FAILED: {err}", flush=True)
                continue
            ts = [t / divisor for t in res["times_ms"]]
            times.setdefault((w, s), []).extend(ts)
            rss[(w, s)] = max(rss.get((w, s), 0.0), res["peak_rss_mb"])
            runs[(w, s)] = runs.get((w, s), 0) + 1
            print(f"  round {r + 1} {w:18s} {s:9s} median {fmt_ms(statistics.median(ts))} ms",
                  flush=True)

    peak = max(sgemm) if sgemm else None
    results, med = [], {}
    for w in dict.fromkeys([w for w, _ in jobs(names, SYSTEMS)]):
        for s in SYSTEMS:
            ts = times.get((w, s))
            if not ts:
                continue
            med[(w, s)] = statistics.median(ts)
            results.append({"workload": w, "system": s, "median_ms": round(med[(w, s)], 6),
                            "min_ms": round(min(ts), 6), "max_ms": round(max(ts), 6),
                            "runs": runs[(w, s)], "peak_rss_mb": rss[(w, s)]})
    results.append({"workload": "sgemm_peak", "gflops": round(peak, 2) if peak else None})
    out_dir = os.path.join(args.build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)

    def ratio(w, s):
        a, b = med.get((w, "loom")), med.get((base_of(w), s))
        return f"{a / b:.2f}x" if a and b else "n/a"

    print()
    print(f"{args.threads} threads; median ms per iteration over {args.rounds} alternating rounds; "
          f"sgemm peak {peak:.1f} GFLOP/s" if peak else "sgemm peak n/a")
    head = ["workload", "loom", "PyTorch", "libtorch", "loom/PyTorch", "loom/libtorch",
            "loom GFLOP/s", "of peak"]
    rows = []
    for w in names:
        lm = med.get((w, "loom"))  # FLOP per reported unit (a call for concurrent_infer)
        gf = WORKLOADS[w][2] / (lm * 1e-3) / 1e9 if lm else None
        peer = base_of(w)  # a _jit row shows the base workload's peer times
        rows.append([w, fmt_ms(lm), fmt_ms(med.get((peer, "pytorch"))),
                     fmt_ms(med.get((peer, "libtorch"))), ratio(w, "pytorch"), ratio(w, "libtorch"),
                     f"{gf:.1f}" if gf else "n/a",
                     f"{100 * gf / peak:.0f}%" if gf and peak else "n/a"])
    extra = []
    if "loaded_cnn_train" in names and "cnn_train" in names:
        for s in SYSTEMS:
            a, b = med.get(("loaded_cnn_train", s)), med.get(("cnn_train", s))
            if a and b:
                extra.append(f"{s} {a / b:.2f}x")
    if "cnn_train" in names:
        mem = ", ".join(f"{s} {rss[('cnn_train', s)]:.0f} MB" for s in SYSTEMS
                        if ("cnn_train", s) in rss)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(k) for c, k in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (k + 2) for k in widths) + "|")
    for row in rows:
        print(line(row))
    print()
    if extra:
        print("loaded_cnn_train / cnn_train (slowdown under load): " + ", ".join(extra))
    if "cnn_train" in names:
        print("peak RSS on cnn_train: " + mem)
    if any(w.endswith("_jit") for w in names):
        print("*_jit rows: loom's step under loom::jit; the PyTorch and libtorch columns are the "
              "peers' eager times of the base workload")
    print("mlp_infer_b1 and concurrent_infer: ms per call (concurrent: wall time / 200 calls on "
          "2 threads)")
    for k, e in errors.items():
        print(f"error {k}: {e}")
    print(f"wrote {os.path.join(out_dir, 'results.json')}")


if __name__ == "__main__":
    main()
