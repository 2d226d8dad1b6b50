"""Transformers 4.55.4 (the reference for diverse beam search, contrastive search and constrained beam search),
run in its own virtual environment through a subprocess; results come back as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

LEGACY_PYTHON = Path(__file__).resolve().parents[2] / ".venv-legacy" / "bin" / "python"

_GENERATE = """
import json, sys, torch, transformers
from transformers import DisjunctiveConstraint, PhrasalConstraint
transformers.logging.set_verbosity_error()
payload = json.load(open(sys.argv[1]))
results = []
for job in payload["jobs"]:
    model = getattr(transformers, job["class_name"]).from_pretrained(job["folder"]).eval()
    kwargs = dict(job["kwargs"])
    if "phrases" in kwargs:
        kwargs["constraints"] = [DisjunctiveConstraint(p) if isinstance(p[0], list) else PhrasalConstraint(p)
                                 for p in kwargs.pop("phrases")]
    inputs = {k: torch.tensor(v) for k, v in job["inputs"].items()}
    torch.manual_seed(job.get("seed", 0))
    with torch.no_grad():
        out = model.generate(**inputs, **kwargs, return_dict_in_generate=True, output_scores=True)
    item = {"sequences": out.sequences.tolist()}
    if getattr(out, "sequences_scores", None) is not None:
        item["sequences_scores"] = out.sequences_scores.tolist()
    if out.scores is not None:
        item["scores"] = [s.tolist() for s in out.scores]
    results.append(item)
json.dump(results, open(sys.argv[2], "w"))
"""


def run_legacy_script(script: str, payload: dict, timeout: float = 300):
    """Run `script` with transformers 4.55.4: it reads the JSON payload from argv[1] and writes JSON to argv[2]."""
    if not LEGACY_PYTHON.exists():
        pytest.fail(f"Missing {LEGACY_PYTHON}: create .venv-legacy with transformers==4.55.4 first.")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, name) for name in ("in.json", "out.json", "run.py")]
        with open(paths[0], "w") as f:
            json.dump(payload, f)
        with open(paths[2], "w") as f:
            f.write(textwrap.dedent(script))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "PYTHONPATH": ""}
        done = subprocess.run([str(LEGACY_PYTHON), paths[2], paths[0], paths[1]], capture_output=True, text=True,
                              timeout=timeout, env=env)
        if done.returncode != 0:
            raise AssertionError(f"transformers 4.55.4 failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        with open(paths[1]) as f:
            return json.load(f)


def legacy_generate(jobs: list[dict]) -> list[dict]:
    """`generate()` of transformers 4.55.4 for each job, in one interpreter start.

    A job: {"class_name", "folder" (saved model), "inputs" (lists), "kwargs" (generate keywords; "phrases" becomes
    PhrasalConstraint / DisjunctiveConstraint objects), "seed"}. Each result: sequences, sequences_scores, scores.
    """
    return run_legacy_script(_GENERATE, {"jobs": [{**job, "folder": str(job["folder"])} for job in jobs]})
