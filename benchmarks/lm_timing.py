"""Helpers of the language-model workloads (transfo_xl, xlnet): a random checkpoint written once by a reference
interpreter, and the forward / greedy-decode measurements with the fingerprints every library must share.

Runs in the runner and in the workers of any interpreter (also the older reference venvs): torch is imported inside
the functions only.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from common import repeat, summary


def ensure_checkpoint(folder: Path, script: str, python: str, *args) -> Path:
    """`folder`, written once by `script` (argv: folder, *args; it prints the parameter count) in `python`."""
    marker = folder / "bench.json"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([python, "-c", script, str(folder), *map(str, args)], capture_output=True, text=True,
                          timeout=1800, env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"could not write the bench checkpoint {folder}:\n{done.stderr[-2000:]}")
    marker.write_text(json.dumps({"parameters": int(done.stdout.split()[-1]), "writer": os.path.normpath(python)}))
    return folder


def random_ids(batch: int, length: int, vocab: int):
    import torch

    return torch.randint(100, vocab - 100, (batch, length), generator=torch.Generator().manual_seed(0))


def checksum(scores) -> str:
    """A rounded summary of float outputs: equal across libraries whose numbers agree to ~1e-5 relative."""
    scores = scores.double()
    return f"sum={float(scores.sum()):.5g} abs={float(scores.abs().mean()):.5g} top={float(scores.max()):.4g}"


def _cpu_timed(fn, cpu_times: list):
    """fn, recording the process CPU seconds of each call: with one thread they move less than wall time when
    other work shares the machine."""

    def timed():
        start = time.process_time()
        out = fn()
        cpu_times.append(time.process_time() - start)
        return out

    return timed


def forward_result(step, case: dict, quick: bool) -> dict:
    """Time `step()` (one inference forward returning float scores) after warm-up."""
    out = step()
    cpu_times = []
    stats = summary(repeat(_cpu_timed(step, cpu_times), warmup=1, repeats=2 if quick else 5))
    cpu_times = cpu_times[1:]  # the warm-up call is not counted
    return {**stats, "cpu_s": statistics.median(cpu_times), "cpu_times_s": cpu_times,
            "tokens_per_s": case["batch"] * case["seq"] / stats["median_s"], "output_shape": list(out.shape),
            "fingerprint": checksum(out)}


def decode_result(generate, case: dict, quick: bool) -> dict:
    """Time `generate()` (greedy, exactly case['new_tokens'] new tokens), wall and CPU seconds: one call after the
    warm-up one (long calls; the runner's rounds give the median)."""
    out = generate()  # warm-up, and the ids every library must agree on
    cpu_times = []
    stats = summary(repeat(_cpu_timed(generate, cpu_times), warmup=0, repeats=1))
    new, cpu_s = case["new_tokens"], statistics.median(cpu_times)
    return {**stats, "cpu_s": cpu_s, "cpu_times_s": cpu_times, "tokens_per_s": case["batch"] * new /
            stats["median_s"], "ms_per_step": 1000 * stats["median_s"] / new,
            "cpu_tokens_per_s": case["batch"] * new / cpu_s, "output_shape": list(out.shape),
            "fingerprint": hashlib.sha256(json.dumps(out.tolist()).encode()).hexdigest()[:16]}


def cases(quick: bool) -> list[dict]:
    """Forward at 1x128 and 8x128 tokens; greedy decode of a 32-token prompt at batch 1 and 4."""
    forward = [{"task": "forward", "batch": batch, "seq": 128} for batch in (1, 8)]
    decode = [{"task": "decode", "batch": batch, "prompt": 32, "new_tokens": 16 if quick else 64}
              for batch in (1, 4)]
    return forward + decode
