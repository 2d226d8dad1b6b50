"""The legacy reference (transformers 4.55.4), reached through a subprocess in its own virtual environment.

Behaviour that transformers 5 dropped (e.g. `head_mask`) is compared against 4.55.4. It cannot be imported beside
5.x, so a small script runs in `.venv-legacy`; tensors travel both ways as `torch.save` files. The models later
releases broke (Transformer-XL, RetriBERT) are compared against 4.34.1 the same way, in `.venv-ref434`
(`run_legacy(..., python=REF434_PYTHON)`).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

LEGACY_PYTHON = Path(__file__).resolve().parents[2] / ".venv-legacy" / "bin" / "python"
# transformers 4.34.1, the old reference for the models later releases broke (Transformer-XL, RetriBERT)
REF434_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ref434" / "bin" / "python"
_CREATE = {LEGACY_PYTHON: 'python3 -m venv .venv-legacy && .venv-legacy/bin/python -m pip install torch==2.13.0 '
                          'transformers==4.55.4 sentencepiece protobuf numpy',
           REF434_PYTHON: 'python3 -m venv .venv-ref434 && .venv-ref434/bin/python -m pip install torch==2.13.0 '
                          'transformers==4.34.1 sentencepiece protobuf "numpy<2" sacremoses==0.1.1'}

_PRELUDE = """
import sys, torch, transformers
payload = torch.load(sys.argv[1], weights_only=True)
"""

_FORWARD = """
results = []
for job in payload["jobs"]:
    model = getattr(transformers, job["class_name"]).from_pretrained(
        job["folder"], attn_implementation="eager", **job["load_kwargs"]).eval()
    with torch.no_grad():
        out = model(**job["inputs"], return_dict=True)
    results.append({k: v for k, v in out.items() if v is not None})
result = results
"""


def run_legacy(code: str, payload: dict, timeout: float = 300, python: Path = LEGACY_PYTHON):
    """Run `code` with transformers 4.55.4 (or the reference venv whose interpreter is `python`, e.g.
    REF434_PYTHON); it reads `payload` (a dict) and sets `result`, which is returned.

    Both travel through `torch.save` / `torch.load(weights_only=True)`: tensors, tuples, lists, dicts, numbers and
    strings only.
    """
    if not Path(python).exists():
        pytest.fail(f"Missing reference interpreter {python}; create it from the repository root with: "
                    f"{_CREATE.get(Path(python), 'bash scripts/setup.sh --no-example')} (or run "
                    f"bash scripts/setup.sh --no-example).")
    with tempfile.TemporaryDirectory() as tmp:
        payload_file, result_file, script = (os.path.join(tmp, n) for n in ("in.pt", "out.pt", "run.py"))
        torch.save(payload, payload_file)
        with open(script, "w", encoding="utf-8") as f:
            f.write(_PRELUDE + textwrap.dedent(code) + "\ntorch.save(result, sys.argv[2])\n")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": ""}
        done = subprocess.run([str(python), script, payload_file, result_file], capture_output=True,
                              text=True, timeout=timeout, env=env)
        if done.returncode != 0:
            raise AssertionError(f"reference {python} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return torch.load(result_file, weights_only=True)


def legacy_forward(jobs: list[dict]) -> list[dict]:
    """Outputs (a dict of the non-None fields) of each job, run by transformers 4.55.4 with eager attention.

    A job is {"class_name": "BertModel", "folder": saved model folder, "inputs": forward kwargs,
    "load_kwargs": optional from_pretrained kwargs}. All jobs share one interpreter start.
    """
    jobs = [{"load_kwargs": {}, **job, "folder": str(job["folder"])} for job in jobs]
    return run_legacy(_FORWARD, {"jobs": jobs})


__all__ = ["LEGACY_PYTHON", "REF434_PYTHON", "run_legacy", "legacy_forward"]
