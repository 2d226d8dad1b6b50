"""One measurement in a fresh process: `python benchmarks/worker.py WORKLOAD LIBRARY CASE_JSON [--quick]`.

Prints one JSON line: the workload's raw numbers, or {"error": ...} when the library under test fails.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str]) -> int:
    name, lib, case_json = argv[:3]
    quick = "--quick" in argv[3:]
    threads = next((int(a.split("=", 1)[1]) for a in argv[3:] if a.startswith("--threads=")), None)
    if threads and name != "import_time":  # the import workload must not import torch itself
        import torch

        torch.set_num_threads(threads)
    try:
        workload = importlib.import_module(f"workloads.{name}")
        result = workload.measure(lib, json.loads(case_json), quick)
    except Exception as err:  # the runner records the failure and goes on with the other measurements
        result = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-4000:]}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
