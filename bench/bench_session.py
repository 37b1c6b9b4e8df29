"""One session from raw echoes to disc features through the participant level: wall time,
time per node and peak memory.

A synthetic session at 256 x 256 x 16 voxels x 10 echoes (1 mm in plane, 256 mm field of view)
runs through ``t2quant BIDS OUT participant`` with the EPG fit, in a child process so that its
peak resident memory can be read. Prints the figures; asserts nothing.

    .venv/bin/python bench/bench_session.py [--plugin Linear] [--nprocs 2] [--omp-nthreads 2]
"""

from __future__ import annotations

import argparse
import gzip
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from t2quant.synth.protocol import Protocol
from t2quant.synth.writer import StudySettings, write_synthetic_study

BENCH = Protocol(in_plane_mm=1.0, fov_ap_mm=256.0, fov_si_mm=256.0, slice_thickness_mm=3.5,
                 n_slices=16, n_echoes=10, esp_ms=10.0)  # fmt: skip


def node_seconds(work: Path) -> dict[str, float]:
    """Run time of each node from Nipype's result files."""
    out = {}
    for path in work.rglob("result_*.pklz"):
        with gzip.open(path) as f:
            result = pickle.load(f)
        duration = getattr(result.runtime, "duration", None)
        if duration is not None:
            out[path.parent.name] = float(duration)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="Linear")
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--omp-nthreads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_study(root / "bids", StudySettings(n_participants=2, seed=1,
                                                            protocol=BENCH))  # fmt: skip
        anat = root / "bids" / "sub-01" / "ses-baseline" / "anat"
        import nibabel as nib

        shape = nib.load(next(anat.glob("*_echo-1_MESE.nii.gz"))).shape
        n_echoes = len(list(anat.glob("*_MESE.nii.gz")))
        cmd = [sys.executable, "-m", "t2quant.cli", str(root / "bids"), str(root / "out"),
               "participant", "--participant-label", "01", "--session-label", "baseline",
               "--work-dir", str(root / "work"), "--plugin", args.plugin, "--nprocs",
               str(args.nprocs), "--omp-nthreads", str(args.omp_nthreads)]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        nodes = node_seconds(root / "work")
    print(f"one session {shape} x {n_echoes} echoes, EPG fit, plugin {args.plugin}, "
          f"--nprocs {args.nprocs} --omp-nthreads {args.omp_nthreads}")  # fmt: skip
    print(f"raw echoes -> features (whole command incl. start-up and report): {wall:.1f} s")
    for name, seconds in sorted(nodes.items(), key=lambda kv: -kv[1]):
        print(f"  node {name:<12s} {seconds:6.2f} s")
    print(f"peak resident memory of the largest process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
