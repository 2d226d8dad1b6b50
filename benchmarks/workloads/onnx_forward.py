"""bert-base forward (float32) through ONNX Runtime: leanformers' own export (`leanformers export onnx`) beside
transformers' BertModel exported with torch.onnx.export (the same exporter, opset and dynamic axes), both run with
the same session options and threads; and leanformers' ORT-backed model (`ORTModel`, what
`pipeline("feature-extraction", model=folder)` runs) on leanformers' export, to show what its wrapper costs.

Every library's last_hidden_state is compared with the one of leanformers' export (`max_abs_diff_vs_leanformers`).
Both exports are written once under fixtures/bench/; leanformers' is written again whenever its sources change, so
the numbers are those of the current exporter and model code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

from common import BENCH_DIR, ROOT, ensure_bert_base, repeat, summary

NAME = "onnx_forward"
METRIC = ("median_s", "lower")
LIBRARIES = ("leanformers", "transformers", "leanformers-ortmodel")
LEAN_EXPORT = BENCH_DIR / "bert-base-random-onnx-leanformers"
REFERENCE_EXPORT = BENCH_DIR / "bert-base-random-onnx-transformers"
OUTPUTS = BENCH_DIR / "onnx-forward-outputs"  # each library's output of this run, for the comparison
SOURCES = ROOT / "src" / "leanformers"

# transformers' BertModel as torch.onnx.export records it, with the recording options leanformers' exporter uses
# (torch.export-based path, weights inside the file, batch and sequence axes dynamic)
REFERENCE_SCRIPT = """
import sys, torch, transformers
from torch.export import Dim
checkpoint, path, opset = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = transformers.BertModel.from_pretrained(checkpoint, dtype=torch.float32).eval()

class LastHiddenState(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          return_dict=True).last_hidden_state

names = ("input_ids", "attention_mask", "token_type_ids")
ids = torch.randint(1000, 30000, (2, 8))
example = (ids, torch.ones_like(ids), torch.zeros_like(ids))
axes = {0: Dim("batch", min=1, max=4096), 1: Dim("sequence", min=2, max=model.config.max_position_embeddings)}
with torch.no_grad():
    torch.onnx.export(LastHiddenState(model), example, path, dynamo=True, input_names=list(names),
                      output_names=["last_hidden_state"], dynamic_shapes=tuple(axes for _ in names),
                      opset_version=opset, external_data=False, verbose=False)
print(opset)
"""


def cases(quick: bool) -> list[dict]:
    return [{"model": "bert-base", "batch": batch, "seq": 128} for batch in (1, 8)]


def sources_digest() -> str:
    """A digest of leanformers' sources: an export written by other code is written again."""
    digest = hashlib.sha256()
    for path in sorted(SOURCES.rglob("*.py")):
        digest.update(str(path.relative_to(SOURCES)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def opset_of(path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    if done.returncode != 0:
        raise RuntimeError(f"could not write {what}:\n{done.stdout[-1000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def ensure_lean_export() -> None:
    """`leanformers export onnx` of the bench checkpoint (feature-extraction), for the current sources."""
    marker = LEAN_EXPORT / "bench.json"
    digest = sources_digest()
    if marker.exists() and json.loads(marker.read_text()).get("sources") == digest:
        return
    shutil.rmtree(LEAN_EXPORT, ignore_errors=True)
    out = _run([sys.executable, "-m", "leanformers.cli", "export", "onnx", str(ensure_bert_base()),
                str(LEAN_EXPORT), "--task", "feature-extraction"], f"leanformers' ONNX export {LEAN_EXPORT}")
    marker.write_text(json.dumps({"sources": digest, "opset": opset_of(LEAN_EXPORT / "model.onnx"),
                                  "export_output": out.strip()[-500:]}))


def export_opset() -> int:
    """The opset of leanformers' export (written first if there is none; an older one still says the opset)."""
    if not (LEAN_EXPORT / "bench.json").exists():
        ensure_lean_export()
    return json.loads((LEAN_EXPORT / "bench.json").read_text())["opset"]


def ensure_reference_export() -> None:
    """transformers' BertModel through torch.onnx.export, at the opset of leanformers' export."""
    opset = export_opset()
    marker = REFERENCE_EXPORT / "bench.json"
    if marker.exists() and json.loads(marker.read_text()).get("opset") == opset:
        return
    shutil.rmtree(REFERENCE_EXPORT, ignore_errors=True)
    REFERENCE_EXPORT.mkdir(parents=True)
    _run([sys.executable, "-c", REFERENCE_SCRIPT, str(ensure_bert_base()), str(REFERENCE_EXPORT / "model.onnx"),
          str(opset)], f"transformers' ONNX export {REFERENCE_EXPORT}")
    marker.write_text(json.dumps({"opset": opset, "writer": "transformers"}))


def prepare(quick: bool) -> None:
    ensure_bert_base()
    ensure_lean_export()
    ensure_reference_export()
    shutil.rmtree(OUTPUTS, ignore_errors=True)
    OUTPUTS.mkdir(parents=True)


def session_options():
    """What every ONNX Runtime session here is given: the measured thread count, one inter-op thread, the default
    (full) graph optimisation, sequential execution."""
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the worker set it to --threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def bert_inputs(case: dict) -> dict:
    """The forward workload's inputs: seeded random ids, a full mask, token types 0 (int64 tensors)."""
    import torch

    generator = torch.Generator().manual_seed(0)
    shape = (case["batch"], case["seq"])
    return {"input_ids": torch.randint(1000, 30000, shape, generator=generator),
            "attention_mask": torch.ones(shape, dtype=torch.long),
            "token_type_ids": torch.zeros(shape, dtype=torch.long)}


def ort_session_step(path, inputs: dict):
    """A plain InferenceSession on `path` -> step() returning last_hidden_state as a numpy array."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), sess_options=session_options(),
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feed = {name: inputs[name].numpy() for name in names}
    return lambda: session.run(["last_hidden_state"], feed)[0]


def compared(outputs_dir, key: str, lib: str, hidden, reference: str = "leanformers") -> dict:
    """Save this library's output; its largest difference from the reference library's output of this run."""
    import numpy as np

    np.save(outputs_dir / f"{key}-{lib}.npy", hidden)
    reference_file = outputs_dir / f"{key}-{reference}.npy"
    if not reference_file.exists():
        return {f"max_abs_diff_vs_{reference}": None}
    return {f"max_abs_diff_vs_{reference}": float(np.abs(np.load(reference_file) - hidden).max())}


def measure(lib: str, case: dict, quick: bool) -> dict:
    import numpy as np
    import torch

    inputs = bert_inputs(case)
    if lib == "leanformers":
        step = ort_session_step(LEAN_EXPORT / "model.onnx", inputs)
    elif lib == "transformers":
        step = ort_session_step(REFERENCE_EXPORT / "model.onnx", inputs)
    elif lib == "leanformers-ortmodel":
        from leanformers.export import ORTModel

        model = ORTModel.from_pretrained(str(LEAN_EXPORT), session_options=session_options())

        def step():
            with torch.inference_mode():
                return model(**inputs).last_hidden_state.numpy()
    else:
        raise ValueError(f"unknown library {lib!r}; expected one of {LIBRARIES}")
    hidden = np.asarray(step())
    times = repeat(step, warmup=1 if quick else 3, repeats=3 if quick else 20)
    stats = summary(times)
    key = f"b{case['batch']}x{case['seq']}"
    return {**stats, "tokens_per_s": case["batch"] * case["seq"] / stats["median_s"],
            "output_shape": list(hidden.shape), "threads": torch.get_num_threads(),
            **compared(OUTPUTS, key, lib, hidden)}
