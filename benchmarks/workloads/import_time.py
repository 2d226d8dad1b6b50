"""Import time of the public entry points, each import in a brand-new interpreter."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

NAME = "import_time"
METRIC = ("median_s", "lower")

STATEMENTS = {
    "auto_classes": "from {lib} import AutoModel, AutoTokenizer",
    "model_class": "from {lib} import BertModel",
}
BASELINE = "import torch"


def cases(quick: bool) -> list[dict]:
    return [{"statement": name} for name in STATEMENTS] + [{"statement": "torch_baseline", "baseline": True}]


def prepare(quick: bool) -> None:
    pass


def _time_once(statement: str) -> float:
    code = ("import time\nstart = time.perf_counter()\n" + statement +
            "\nprint(time.perf_counter() - start)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def measure(lib: str, case: dict, quick: bool) -> dict:
    statement = BASELINE if case.get("baseline") else STATEMENTS[case["statement"]].format(lib=lib)
    _time_once(statement)  # warm the file-system cache
    times = [_time_once(statement) for _ in range(3 if quick else 10)]
    return {"statement": statement, "times_s": times, "median_s": statistics.median(times), "min_s": min(times)}

