"""Time the public per-voxel T2 fitters DOSMA, ukat and qmri against t2quant on the same data.

What it measures: wall time of the fit call alone (no imports, no file I/O, no data wrapping;
each call first warmed up on a few voxels, which also JIT-compiles ukat's numba EPG), converted
to voxels/s; the speed ratio t2quant/peer for the same model on the same echoes; and, against
the known truth, each tool's median |relative T2 error|, median signed relative error and the
number of failed outputs (NaN, zero, or T2 on an optimiser bound).

Data (one run, one seed, shared by every tool): S0 = 1000, T2 uniform in 30-250 ms, 8 echoes at
10 ms spacing, Rician noise sigma = 10.
  * ``mono``: ideal 180 deg refocusing, ``S0 exp(-TE/T2)``; compared with every mono-exponential
    fitter (plain, with an offset, with the first echo skipped).
  * ``stim``: EPG CPMG train (t2quant.relaxometry.epg) with refocusing uniform in 130-180 deg and
    T1 = 1000 ms; compared with ukat's T2StimFit (EPG fit of T2, amplitude and B1).

t2quant runs in this process on the full set and on the sample that the peers fit. The peers
cannot share t2quant's venv (DOSMA 0.1.2 fails to import with NumPy 2, and ukat pins SciPy and
scikit-learn), so each peer runs in a subprocess of a separate venv (``bench/.peers-venv``,
pinned in ``bench/peers-requirements.txt``) on the sample saved as .npy, and hands back its
timing as JSON and its T2 map as .npy. A peer that cannot be installed or run is reported in
one line and skipped; no number is ever made up for it.

Run (from the repository root):
    .venv/bin/python bench/bench_peers.py --setup     # once: build bench/.peers-venv, then run
    .venv/bin/python bench/bench_peers.py [--n-voxels 65536] [--sample 3000] [--threads 2]
Without the peers venv only the t2quant rows are timed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".peers-venv"
REQUIREMENTS = HERE / "peers-requirements.txt"
PEERS = ("dosma", "ukat", "qmri")

S0 = 1000.0
NOISE_SIGMA = 10.0
T2_RANGE_MS = (30.0, 250.0)
N_ECHOES = 8
ESP_MS = 10.0
T1_MS = 1000.0
REFOCUS_RANGE_DEG = (130.0, 180.0)
WARMUP_VOXELS = 16

Record = dict[str, Any]
FloatArray = NDArray[np.float64]
FitFn = Callable[[Any], Any]

# t2quant runs: (dataset, method label, fit_t2 keyword arguments). The label is the key that
# matches a peer to "the same method".
T2QUANT_RUNS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("mono", "loglinear", {"method": "loglinear"}),
    ("mono", "monoexp", {"method": "monoexp"}),
    ("mono", "monoexp_offset", {"method": "monoexp_offset"}),
    ("mono", "monoexp_offset skip1", {"method": "monoexp_offset", "skip_first_echo": True}),
    ("stim", "monoexp", {"method": "monoexp"}),
    ("stim", "epg", {"method": "epg", "t1_ms": T1_MS}),
)


# --------------------------------------------------------------------------------------------
# Peer side: runs inside bench/.peers-venv, imports only NumPy and the peer (never t2quant).
# --------------------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:200]


def _time_variant(
    out: list[Record],
    workdir: Path,
    base: Record,
    fit: FitFn,
    signal: FloatArray,
    prepare: Callable[[FloatArray], Any] | None = None,
) -> None:
    """Warm ``fit`` up on a few voxels, then time one call on all of ``signal``; save T2 (ms)."""
    rec = {**base, "n": int(signal.shape[0]), "seconds": None, "t2_file": None, "error": None}
    prep = prepare if prepare is not None else (lambda s: s)
    try:
        fit(prep(signal[:WARMUP_VOXELS]))
        data = prep(signal)
        start = time.perf_counter()
        t2 = fit(data)
        rec["seconds"] = time.perf_counter() - start
        name = f"{base['tool']}_{len(out)}.npy"
        np.save(workdir / name, np.asarray(t2, dtype=np.float64).reshape(-1))
        rec["t2_file"] = name
    except Exception as exc:  # a peer failing must not stop the others
        rec["error"] = _one_line(exc)
    out.append(rec)


def _peer_dosma(workdir: Path, mono: FloatArray, stim: FloatArray, te_ms: FloatArray) -> Record:
    import dosma
    from dosma.core.fitting import MonoExponentialFit
    from dosma.core.med_volume import MedicalVolume

    def volumes(signal: FloatArray) -> list[Any]:
        # DOSMA fits a list of echo volumes; one (n, 1, 1) volume per echo.
        return [
            MedicalVolume(signal[:, i].reshape(-1, 1, 1), np.eye(4)) for i in range(signal.shape[1])
        ]

    def fitter(bounds: tuple[float, float], workers: int) -> FitFn:
        def fit(ys: list[Any]) -> FloatArray:
            # The settings of DOSMA's own T2 path (scan_sequences MAPSS.generate_t2_map):
            # log-linear polyfit start, then per-voxel curve_fit; out-of-bounds -> 0.
            mef = MonoExponentialFit(
                bounds=bounds, tc0="polyfit", decimal_precision=3, num_workers=workers
            )
            tc, _r2 = mef.fit(te_ms, ys)
            return np.asarray(tc.volume)

        return fit

    out: list[Record] = []
    base = {"tool": "dosma", "version": dosma.__version__, "dataset": "mono", "bounds_ms": None}
    variants = (
        ((0.0, 100.0), 0, "MonoExpFit, bounds 0-100 ms (default)"),
        ((0.0, 1000.0), 0, "MonoExpFit, bounds widened 0-1000 ms"),
        ((0.0, 1000.0), 2, "MonoExpFit, 0-1000 ms, num_workers=2"),
    )
    for bounds, workers, label in variants:
        rec = {**base, "method": "monoexp", "label": label}
        _time_variant(out, workdir, rec, fitter(bounds, workers), mono, prepare=volumes)
    return {"tool": "dosma", "version": dosma.__version__, "variants": out, "notes": []}


def _peer_ukat(workdir: Path, mono: FloatArray, stim: FloatArray, te_ms: FloatArray) -> Record:
    from ukat.mapping.t2 import T2
    from ukat.mapping.t2_stimfit import StimFitModel, T2StimFit

    version = importlib.metadata.version("ukat")
    affine = np.eye(4)
    n_echoes = te_ms.size

    def t2_fitter(method: str, multithread: bool) -> FitFn:
        def fit(signal: FloatArray) -> FloatArray:
            return np.asarray(
                T2(signal, te_ms, affine, method=method, multithread=multithread).t2_map
            )

        return fit

    def stim_model(with_te: bool = True) -> Any:
        # No vendor preset: set the documented opt fields by hand for this train (T1 as
        # simulated). 'te' is only set by the UKRIN vendor presets, but T2StimFit needs it.
        model = StimFitModel(mode="non_selective", n_comp=1)
        model.opt["esp"] = ESP_MS / 1000.0
        model.opt["etl"] = n_echoes
        model.opt["T1"] = T1_MS / 1000.0
        model.opt["RFr"]["FA_array"] = np.ones(n_echoes)
        if with_te:
            model.opt["te"] = te_ms / 1000.0
        return model

    def stim_fitter(multithread: bool) -> FitFn:
        def fit(signal: FloatArray) -> FloatArray:
            return np.asarray(
                T2StimFit(signal, affine, stim_model(), multithread=multithread).t2_map
            )

        return fit

    notes: list[str] = []
    try:
        T2StimFit(stim[:4].copy(), affine, stim_model(with_te=False), multithread=False)
        notes.append("ukat T2StimFit without opt['te'] ran")
    except Exception as exc:
        notes.append(
            f"ukat T2StimFit without opt['te'] (set only by the vendor presets) raises "
            f"{_one_line(exc)}; this benchmark sets opt['te'] itself"
        )

    out: list[Record] = []
    mono_base = {"tool": "ukat", "version": version, "dataset": "mono", "bounds_ms": (0.0, 1000.0)}
    for method, key, multithread, label in (
        ("2p_exp", "monoexp", False, "T2 2p_exp, multithread=False"),
        ("2p_exp", "monoexp", True, "T2 2p_exp, multithread=True (2 procs)"),
        ("3p_exp", "monoexp_offset", False, "T2 3p_exp, multithread=False"),
    ):
        rec = {**mono_base, "method": key, "label": label}
        _time_variant(out, workdir, rec, t2_fitter(method, multithread), mono)
    stim_base = {"tool": "ukat", "version": version, "dataset": "stim", "bounds_ms": (15.0, 3000.0)}
    for multithread, label in (
        (False, "T2StimFit non_selective, multithread=False"),
        (True, "T2StimFit non_selective, multithread=True"),
    ):
        rec = {**stim_base, "method": "epg", "label": label}
        _time_variant(out, workdir, rec, stim_fitter(multithread), stim)
    return {"tool": "ukat", "version": version, "variants": out, "notes": notes}


def _peer_qmri(workdir: Path, mono: FloatArray, stim: FloatArray, te_ms: FloatArray) -> Record:
    from qmri.relaxometry import t2 as qmri_t2

    version = importlib.metadata.version("qmri")
    te_s = te_ms / 1000.0  # qmri works in seconds

    def fitter(model: str, skip: int) -> FitFn:
        def fit(signal: FloatArray) -> FloatArray:
            return np.asarray(qmri_t2.fit(signal, te_s, model=model, skip_echoes=skip).t2) * 1e3

        return fit

    out: list[Record] = []
    base = {"tool": "qmri", "version": version, "dataset": "mono", "bounds_ms": None}
    for model, skip, key, label in (
        ("reduced", 0, "monoexp", 't2.fit(model="reduced", skip_echoes=0)'),
        ("full", 0, "monoexp_offset", 't2.fit(model="full", skip_echoes=0)'),
        ("full", 1, "monoexp_offset skip1", "t2.fit() defaults (full, skip 1)"),
    ):
        rec = {**base, "method": key, "label": label}
        _time_variant(out, workdir, rec, fitter(model, skip), mono)
    return {"tool": "qmri", "version": version, "variants": out, "notes": []}


PEER_RUNNERS: dict[str, Callable[[Path, FloatArray, FloatArray, FloatArray], Record]] = {
    "dosma": _peer_dosma,
    "ukat": _peer_ukat,
    "qmri": _peer_qmri,
}


def worker_main(tool: str, workdir: Path) -> int:
    """Peer subprocess: fit the saved sample with one peer and write ``result_<tool>.json``."""
    warnings.simplefilter("ignore")
    mono = np.load(workdir / "mono.npy").astype(np.float64)
    stim = np.load(workdir / "stim.npy").astype(np.float64)
    te_ms = np.load(workdir / "te_ms.npy").astype(np.float64)
    try:
        result = PEER_RUNNERS[tool](workdir, mono, stim, te_ms)
    except Exception as exc:  # import or set-up failure of the whole peer
        result = {"tool": tool, "error": _one_line(exc), "variants": [], "notes": []}
    (workdir / f"result_{tool}.json").write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# Main side: data, t2quant, peers venv, table.
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    tool: str
    version: str
    dataset: str
    method: str
    label: str
    n: int
    seconds: float | None
    t2_ms: FloatArray | None
    bounds_ms: tuple[float, float] | None = None
    error: str | None = None

    @property
    def rate(self) -> float | None:
        if self.seconds is None or self.seconds <= 0:
            return None
        return self.n / self.seconds


def rician(clean: FloatArray, rng: np.random.Generator) -> NDArray[np.float32]:
    noise = rng.normal(0.0, NOISE_SIGMA, (2, *clean.shape))
    return np.hypot(clean + noise[0], noise[1]).astype(np.float32)


def make_data(n: int, seed: int) -> dict[str, Any]:
    from t2quant.relaxometry.epg import epg_mese_signal

    rng = np.random.default_rng(seed)
    te_ms = ESP_MS * np.arange(1, N_ECHOES + 1, dtype=np.float64)
    t2 = rng.uniform(*T2_RANGE_MS, n)
    refocus = rng.uniform(*REFOCUS_RANGE_DEG, n)
    mono = rician(S0 * np.exp(-te_ms / t2[:, None]), rng)
    stim = rician(S0 * epg_mese_signal(t2, T1_MS, ESP_MS, N_ECHOES, refocus), rng)
    return {"te_ms": te_ms, "t2": t2, "mono": mono, "stim": stim}


def run_t2quant(data: dict[str, Any], sample: int, threads: int, repeats: int) -> list[Row]:
    import t2quant
    from t2quant.relaxometry import fit_t2

    version = getattr(t2quant, "__version__", None) or importlib.metadata.version("t2quant")
    te_ms = data["te_ms"]
    rows: list[Row] = []
    for dataset, label, kwargs in T2QUANT_RUNS:
        for n, tag in ((data["t2"].size, "full set"), (sample, "peer sample")):
            signal = data[dataset][:n]
            fit_t2(signal[:WARMUP_VOXELS], te_ms, n_threads=threads, **kwargs)
            times = []
            for _ in range(repeats):  # calls take milliseconds: median of a few
                start = time.perf_counter()
                fit = fit_t2(signal, te_ms, n_threads=threads, **kwargs)
                times.append(time.perf_counter() - start)
            seconds = float(np.median(times))
            t2 = np.asarray(fit.t2_ms, dtype=np.float64)
            text = f"fit_t2 {kwargs['method']}{', skip 1st' if 'skip' in label else ''}"
            rows.append(Row("t2quant", version, dataset, label, f"{text} ({tag})", n, seconds, t2))
    return rows


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def read_requirements() -> list[str]:
    lines = REQUIREMENTS.read_text().splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def setup_venv(venv: Path) -> None:
    """Create ``venv`` (once) and install the pinned peers; fall back to one peer at a time."""
    python = venv_python(venv)
    if not python.exists():
        print(f"creating the peers venv {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    print(f"installing {REQUIREMENTS.name} into {venv} (a minute or two)", flush=True)
    if subprocess.run([*pip, "-r", str(REQUIREMENTS)]).returncode == 0:
        return
    reqs = read_requirements()
    pins = [r for r in reqs if r.split("=")[0].split("<")[0].lower() not in PEERS]
    print("installing the peers together failed; trying each peer on its own", flush=True)
    for req in reqs:
        if req in pins:
            continue
        ok = subprocess.run([*pip, req, *pins]).returncode == 0
        print(f"  {req}: {'installed' if ok else 'FAILED to install'}", flush=True)


def peer_versions(python: Path) -> str:
    code = (
        "import importlib.metadata as m, sys\n"
        "def v(p):\n"
        "    try:\n        return m.version(p)\n"
        "    except m.PackageNotFoundError:\n        return 'not installed'\n"
        "print(sys.version.split()[0], *(f'{p}=={v(p)}' for p in sys.argv[1:]))\n"
    )
    names = [*PEERS, "numpy", "scipy"]
    proc = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True)
    return proc.stdout.strip() or proc.stderr.strip().splitlines()[-1]


def run_peer(tool: str, python: Path, workdir: Path, timeout: float) -> tuple[list[Row], list[str]]:
    """Run one peer in the peers venv; return its rows and one-line notes."""
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", tool, "--workdir", str(workdir)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return [], [f"{tool}: not run: worker exceeded --timeout {timeout:.0f} s"]
    result_file = workdir / f"result_{tool}.json"
    if not result_file.exists():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return [], [f"{tool}: not run: worker exited {proc.returncode}: {tail}"]
    result = json.loads(result_file.read_text())
    notes = [f"{tool}: {note}" for note in result.get("notes", [])]
    if result.get("error"):
        return [], [f"{tool}: not run: {result['error']}", *notes]
    rows: list[Row] = []
    for rec in result["variants"]:
        t2 = None
        if rec["t2_file"]:
            t2 = np.load(workdir / rec["t2_file"])
            if t2.size != rec["n"]:
                rec["error"] = f"returned {t2.size} values for {rec['n']} voxels"
                t2 = None
        bounds = tuple(rec["bounds_ms"]) if rec.get("bounds_ms") else None
        seconds = rec["seconds"] if t2 is not None else None
        fields = ("tool", "version", "dataset", "method", "label", "n")
        known = {k: rec[k] for k in fields}
        rows.append(Row(**known, seconds=seconds, t2_ms=t2, bounds_ms=bounds, error=rec["error"]))
        if rec["error"]:
            notes.append(f"{tool} [{rec['label']}]: failed: {rec['error']}")
    return rows, notes


@dataclass
class Accuracy:
    n_nan: int
    n_zero: int
    n_bound: int
    med_abs: float
    med_signed: float
    med_abs_all: float


def accuracy(t2: FloatArray, truth: FloatArray, bounds: tuple[float, float] | None) -> Accuracy:
    """Errors over valid outputs, plus all outputs with NaN/zero counted as T2 = 0 (-100%)."""
    finite = np.isfinite(t2)
    positive = finite & (t2 > 0)
    on_bound = np.zeros_like(positive)
    if bounds is not None:
        for b in bounds:
            if b > 0:
                on_bound |= positive & np.isclose(t2, b, rtol=1e-3, atol=0.0)
    valid = positive & ~on_bound
    rel = t2[valid] / truth[valid] - 1.0
    rel_all = np.where(positive, np.where(positive, t2, 1.0) / truth - 1.0, -1.0)
    return Accuracy(
        n_nan=int(np.count_nonzero(~finite)),
        n_zero=int(np.count_nonzero(finite & (t2 <= 0))),
        n_bound=int(np.count_nonzero(on_bound)),
        med_abs=float(np.median(np.abs(rel))) if rel.size else float("nan"),
        med_signed=float(np.median(rel)) if rel.size else float("nan"),
        med_abs_all=float(np.median(np.abs(rel_all))),
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def print_table(rows: list[Row], truth: FloatArray) -> None:
    full = {
        (r.dataset, r.method): r.rate for r in rows if r.tool == "t2quant" and "full" in r.label
    }
    part = {
        (r.dataset, r.method): r.rate for r in rows if r.tool == "t2quant" and "sample" in r.label
    }
    head = (
        f"{'tool':<8} {'method':<21} {'variant':<45} {'voxels':>6} {'fit s':>7} "
        f"{'voxels/s':>10} {'t2q/peer':>9} {'(sample)':>8} {'med|rel|':>8} {'med rel':>8} "
        f"{'nan/0/bnd':>11} {'|rel|all':>8}"
    )
    order = {run[:2]: i for i, run in enumerate(T2QUANT_RUNS)}
    for dataset, title in (
        ("mono", "mono: ideal 180 deg refocusing, S0*exp(-TE/T2) + Rician noise"),
        ("stim", "stim: EPG CPMG, refocusing 130-180 deg (stimulated echoes) + Rician noise"),
    ):
        subset = [r for r in rows if r.dataset == dataset]
        if not subset:
            continue
        subset.sort(key=lambda r: (order.get((r.dataset, r.method), 99), r.tool != "t2quant"))
        print(f"\n[{title}]")
        print(head)
        print("-" * len(head))
        for r in subset:
            key = (r.dataset, r.method)
            rate = r.rate
            ratio = ratio_s = None
            if r.tool != "t2quant" and rate:
                ratio = full[key] / rate if full.get(key) else None
                ratio_s = part[key] / rate if part.get(key) else None
            if r.t2_ms is None:
                acc_cols = f"{'-':>8} {'-':>8} {'-':>11} {'-':>8}"
            else:
                acc = accuracy(r.t2_ms, truth[: r.n], r.bounds_ms)
                fails = f"{acc.n_nan}/{acc.n_zero}/{acc.n_bound}"
                acc_cols = (
                    f"{_fmt(acc.med_abs, '.2%'):>8} {_fmt(acc.med_signed, '+.2%'):>8} "
                    f"{fails:>11} {_fmt(acc.med_abs_all, '.2%'):>8}"
                )
            print(
                f"{r.tool:<8} {r.method:<21} {r.label[:45]:<45} {r.n:>6} "
                f"{_fmt(r.seconds, '.3f'):>7} {_fmt(rate, ',.0f'):>10} "
                f"{_fmt(ratio, ',.0f'):>9} {_fmt(ratio_s, ',.0f'):>8} {acc_cols}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--setup", action="store_true", help="build/update the peers venv first")
    parser.add_argument("--n-voxels", type=int, default=65_536, help="voxels for t2quant")
    parser.add_argument("--sample", type=int, default=3_000, help="voxels for every tool")
    parser.add_argument("--threads", type=int, default=2, help="t2quant n_threads")
    parser.add_argument("--repeats", type=int, default=3, help="t2quant timed calls (median)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers to run")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="peers venv folder")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per peer worker")
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        if args.workdir is None:
            parser.error("--worker needs --workdir")
        return worker_main(args.worker, args.workdir)

    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")
    if args.n_voxels < WARMUP_VOXELS or not WARMUP_VOXELS <= args.sample <= args.n_voxels:
        parser.error(f"need {WARMUP_VOXELS} <= --sample <= --n-voxels")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {', '.join(PEERS)}")
    venv = args.venv.resolve()
    if args.setup:
        setup_venv(venv)

    data = make_data(args.n_voxels, args.seed)
    truth = data["t2"]
    print(
        f"T2 fitters on the same synthetic data: S0={S0:g}, T2 U({T2_RANGE_MS[0]:g},"
        f"{T2_RANGE_MS[1]:g}) ms, {N_ECHOES} echoes x {ESP_MS:g} ms, Rician sigma="
        f"{NOISE_SIGMA:g}, seed {args.seed}; stim set: refocusing U({REFOCUS_RANGE_DEG[0]:g},"
        f"{REFOCUS_RANGE_DEG[1]:g}) deg, T1={T1_MS:g} ms"
    )
    print(
        f"t2quant: {args.n_voxels} voxels (full set) and the first {args.sample} (peer sample), "
        f"n_threads={args.threads}, median of {args.repeats} calls; peers: the {args.sample}-voxel "
        f"sample, one timed call each; cores: {os.cpu_count()}"
    )
    print(f"t2quant venv: Python {sys.version.split()[0]}, numpy {np.__version__}")

    rows = run_t2quant(data, args.sample, args.threads, args.repeats)
    notes: list[str] = []
    python = venv_python(venv)
    if peers and not python.exists():
        notes += [f"{p}: not run: no peers venv at {venv} (run with --setup)" for p in peers]
    elif peers:
        print(f"peers venv: Python {peer_versions(python)}")
        with tempfile.TemporaryDirectory(prefix="t2peers-") as tmp:
            workdir = Path(tmp)
            np.save(workdir / "te_ms.npy", data["te_ms"])
            np.save(workdir / "mono.npy", data["mono"][: args.sample])
            np.save(workdir / "stim.npy", data["stim"][: args.sample])
            for peer in peers:
                print(f"running {peer} ...", flush=True)
                peer_rows, peer_notes = run_peer(peer, python, workdir, args.timeout)
                rows += peer_rows
                notes += peer_notes

    print_table(rows, truth)
    print(
        "\nvoxels/s: wall time of the fit call only. t2q/peer: t2quant full-set voxels/s over the"
        " peer's; (sample): t2quant on the peer's exact voxels over the peer's. med|rel| and"
        " med rel: over valid outputs; nan/0/bnd: outputs that are NaN, <= 0 (DOSMA and ukat"
        " write 0 for a failed or out-of-bounds fit, qmri for a failed one) or on an optimiser"
        " bound; |rel|all: median over all voxels with NaN/0 counted as -100%."
    )
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
