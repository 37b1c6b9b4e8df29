"""Benchmark the vectorised EPG CPMG simulator (t2quant.relaxometry.epg.epg_mese_signal).

Usage: python bench/bench_epg.py [--voxels 200000] [--echoes 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from t2quant.relaxometry.epg import epg_mese_signal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxels", type=int, default=200_000, help="number of voxels")
    parser.add_argument("--echoes", type=int, default=12, help="echoes per train")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    if args.voxels < 1 or args.echoes < 1 or args.repeats < 1:
        parser.error("--voxels, --echoes and --repeats must be >= 1")

    rng = np.random.default_rng(args.seed)
    t2 = rng.uniform(20.0, 300.0, args.voxels)
    refocus = rng.uniform(130.0, 180.0, args.voxels)
    t1, esp = 1000.0, 10.0

    def run() -> np.ndarray:
        return epg_mese_signal(t2, t1, esp, args.echoes, refocus)

    run()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    best = min(times)

    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    sig = run()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    out_bytes = sig.nbytes

    print(f"epg_mese_signal: {args.voxels} voxels x {args.echoes} echoes, best of {args.repeats}")
    print(f"seconds (best): {best:.4f}")
    print(f"voxels/s: {args.voxels / best:,.0f}")
    print(f"voxel-echoes/s: {args.voxels * args.echoes / best:,.0f}")
    print(f"peak memory during call (tracemalloc): {peak / 2**20:.1f} MiB")
    print(f"peak memory excluding output: {(peak - out_bytes) / 2**20:.1f} MiB")
    print(f"peak bytes per voxel excluding output: {(peak - out_bytes) / args.voxels:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
