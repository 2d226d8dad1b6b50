"""Side-by-side benchmarks of leanformers and transformers.

    python benchmarks/run.py [--quick] [--only NAME[,NAME]] [--threads N] [--avx2-only] [--out results.json]

Each (workload, case, library) runs in its own fresh Python process under the same conditions (thread counts,
environment, warm-up, median of N). The JSON keeps every raw number; the table shows medians and the speedup
(above 1: leanformers is better).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import BENCH_DIR, LIBRARIES  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def child_env(args) -> dict:
    """The same environment for every measured process."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RAYON_NUM_THREADS"):
        env[var] = str(args.threads)
    if args.avx2_only:
        env["LD_PRELOAD"] = " ".join(filter(None, (str(avx2_only_library()), env.get("LD_PRELOAD"))))
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="true",
               TRANSFORMERS_VERBOSITY="error", PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
    return env


def avx2_only_library() -> Path:
    """avx2_only.c built into the bench fixtures (again when the source changes): preloaded, it hides AVX-512."""
    source = HERE / "avx2_only.c"
    built = BENCH_DIR / "avx2_only.so"
    if not built.exists() or built.stat().st_mtime < source.stat().st_mtime:
        built.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(built), str(source), "-ldl"], check=True)
    return built


def libraries_of(workload) -> tuple[str, ...]:
    """The libraries a workload compares, leanformers first (most compare with transformers only)."""
    return tuple(getattr(workload, "LIBRARIES", LIBRARIES))


def python_of(workload, lib: str) -> str:
    """The interpreter that measures `lib`: a workload may run a reference that only an older venv has."""
    return str(getattr(workload, "PYTHONS", {}).get(lib, sys.executable))


def run_one(workload, lib: str, case: dict, args) -> dict:
    name = workload.__name__.rsplit(".", 1)[-1]
    command = [python_of(workload, lib), str(HERE / "worker.py"), name, lib, json.dumps(case),
               f"--threads={args.threads}"]
    if args.quick:
        command.append("--quick")
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout,
                              env=child_env(args))
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    wall = time.perf_counter() - start
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"worker exited with {done.returncode}", "stderr": done.stderr[-4000:]}
    result["process_wall_s"] = wall
    return result


def compare(metric: tuple[str, str], ours: dict, theirs: dict) -> float | None:
    """Speedup of leanformers over another library on the workload's metric (above 1: leanformers better)."""
    key, better = metric
    if key not in ours or key not in theirs or not ours[key] or not theirs[key]:
        return None
    return theirs[key] / ours[key] if better == "lower" else ours[key] / theirs[key]


def run_workload(name: str, args) -> list[dict]:
    workload = importlib.import_module(f"workloads.{name}")
    try:
        workload.prepare(args.quick)
    except Exception as err:
        return [{"workload": name, "error": f"prepare failed: {type(err).__name__}: {err}"}]
    rows = []
    for case in workload.cases(args.quick):
        row = {"workload": name, "case": case, "metric": workload.METRIC[0], "better": workload.METRIC[1]}
        libraries = libraries_of(workload)
        row["libraries"] = list(libraries)
        rounds = {lib: [] for lib in libraries}
        for index in range(args.rounds):
            # alternate the order, so drift on a shared machine hits every library alike
            for lib in (libraries if index % 2 == 0 else libraries[::-1]):
                rounds[lib].append(run_one(workload, lib, case, args))
                print(f"  {name} {case} {lib}: {describe(rounds[lib][-1], workload.METRIC[0])}", flush=True)
        for lib in libraries:
            row[lib] = pick_round(rounds[lib], workload.METRIC)
        ours, *others = libraries
        row["speedups"] = {lib: compare(workload.METRIC, row[ours], row[lib]) for lib in others}
        row["speedup"] = row["speedups"].get("transformers", row["speedups"][others[0]])
        prints = [row[lib].get("fingerprint") for lib in libraries]
        if None not in prints:  # a speedup only counts if every library produced the same result
            row["same_output"] = len(set(prints)) == 1
        rows.append(row)
    return rows


def pick_round(results: list[dict], metric: tuple[str, str]) -> dict:
    """The median round by the metric (an error if every round failed); all rounds stay in the JSON."""
    key, _ = metric
    good = sorted((r for r in results if key in r), key=lambda r: r[key])
    chosen = dict(good[(len(good) - 1) // 2]) if good else dict(results[-1])
    if len(results) > 1:
        chosen["rounds"] = results
    return chosen


def describe(result: dict, key: str) -> str:
    if "error" in result:
        return "ERROR " + result["error"].splitlines()[0][:200]
    return f"{key}={result.get(key):.4g}"


def metadata(args) -> dict:
    def ask(code: str) -> str:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(args))
        return done.stdout.strip() or "unavailable"

    versions = {lib: ask(f"import {lib}; print({lib}.__version__)")
                for lib in (*LIBRARIES, "torch", "tokenizers", "safetensors", "huggingface_hub")}
    return {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "cpu_capability": ask("import torch; print(torch.backends.cpu.get_cpu_capability())"),
            "threads": args.threads, "avx2_only": args.avx2_only, "quick": args.quick, "rounds": args.rounds,
            "versions": versions}


def print_table(rows: list[dict]):
    print(f"\n{'workload':<12} {'case':<44} {'metric':<16} values (speedup of leanformers over each other library)")
    for row in rows:
        case = ",".join(f"{k}={v}" for k, v in row.get("case", {}).items())
        if "error" in row:
            print(f"{row['workload']:<12} {case:<44} ERROR {row['error']}")
            continue
        libraries = row.get("libraries", LIBRARIES)
        cells = []
        for lib in libraries:
            value = row[lib].get(row["metric"])
            speedup = row.get("speedups", {}).get(lib)
            cells.append(f"{lib} {value:.4g}" if value is not None else f"{lib} error")
            cells[-1] += f" ({speedup:.2f}x)" if speedup else ""
        mismatch = "  OUTPUTS DIFFER" if row.get("same_output") is False else ""
        print(f"{row['workload']:<12} {case[:44]:<44} {row['metric']:<16} {' | '.join(cells)}{mismatch}")
        extra = [row[lib].get("peak_rss_delta_mb") for lib in libraries]
        if None not in extra:
            print(f"{'':<12} {'':<44} {'peak_rss_mb':<16} " + " | ".join(f"{lib} {mb:.1f}" for lib, mb in
                                                                          zip(libraries, extra)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--only", help=f"comma-separated workloads, from: {', '.join(WORKLOADS)}")
    parser.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1), help="torch/BLAS threads")
    parser.add_argument("--rounds", type=int, default=None,
                        help="fresh processes per library and case, alternating order (default 1 quick, 3 full)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per measured process")
    parser.add_argument("--avx2-only", action="store_true",
                        help="hide AVX-512 from every measured process (CPUID faulting, Linux: avx2_only.c)")
    parser.add_argument("--out", default=str(HERE / "results" / "results.json"), help="JSON file to write")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {', '.join(WORKLOADS)}")

    results = {"meta": metadata(args), "results": []}
    for name in names:
        print(f"[{name}]", flush=True)
        results["results"].extend(run_workload(name, args))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2))  # keep what is done if a later workload dies
    print_table(results["results"])
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
