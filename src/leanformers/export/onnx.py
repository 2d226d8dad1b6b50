"""`export_onnx`: a checkpoint -> model.onnx (plus its config and tokenizer), checked in ONNX Runtime.

The graph is recorded with torch's own exporter (torch.onnx.export, its torch.export-based path) from a small
wrapper (graphs.py) that takes named tensors and returns the task's outputs as a tuple, with dynamic batch and
sequence axes; for text generation the key/value cache goes in and comes out as tensors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from ..errors import ConfigError

ONNX_FILE = "model.onnx"
EXPORT_INFO = "onnx_export.json"  # task, input and output names of the graph: how ORTModel calls it
TOLERANCE = 1e-4


@dataclass(frozen=True)
class OnnxTask:
    head: str              # auto.py head name ("" = the bare model)
    outputs: tuple         # output fields of the model, in the graph's order


ONNX_TASKS = {
    "feature-extraction": OnnxTask("", ("last_hidden_state",)),
    "fill-mask": OnnxTask("MaskedLM", ("logits",)),
    "text-classification": OnnxTask("SequenceClassification", ("logits",)),
    "token-classification": OnnxTask("TokenClassification", ("logits",)),
    "question-answering": OnnxTask("QuestionAnswering", ("start_logits", "end_logits")),
    "text-generation": OnnxTask("CausalLM", ("logits",)),  # and present.N.key/value after it
    "text2text-generation": OnnxTask("Seq2SeqLM", ("logits",)),  # encoder and decoder files
}
SEQ2SEQ_FILES = {"encoder": "encoder_model.onnx", "decoder": "decoder_model.onnx"}


def load_for_task(model_id, task: str, **kwargs):
    """The checkpoint with the head `task` needs, in eval mode, float32 on the CPU."""
    from .. import auto

    if task not in ONNX_TASKS:
        raise ConfigError(f"ONNX export of task {task!r} is not supported; choose one of {sorted(ONNX_TASKS)}.")
    head = ONNX_TASKS[task].head
    loader = getattr(auto, next(name for name, value in auto.AUTO_HEADS.items() if value == head)) if head \
        else auto.AutoModel
    return loader.from_pretrained(str(model_id), dtype=torch.float32, **kwargs).eval()


def task_graphs(model, task: str) -> dict:
    """{file name: graph} of the files an export of `task` writes."""
    from .graphs import decoder_graph, encoder_graph, seq2seq_graphs

    if task == "text2text-generation":
        return dict(zip(SEQ2SEQ_FILES.values(), seq2seq_graphs(model)))
    return {ONNX_FILE: decoder_graph(model) if task == "text-generation" else
            encoder_graph(model, ONNX_TASKS[task].outputs)}


def export_onnx(model_id, output_dir, task: str = "feature-extraction", opset: int | None = None,
                atol: float = TOLERANCE, **load_kwargs) -> float:
    """Export `model_id` for `task` into `output_dir` (model.onnx, config, tokenizer, export info); returns the
    largest difference between ONNX Runtime and PyTorch on test inputs, and raises when it exceeds `atol`."""
    model = load_for_task(model_id, task, **load_kwargs)
    os.makedirs(output_dir, exist_ok=True)
    graphs = task_graphs(model, task)
    for name, graph in graphs.items():
        record(graph, os.path.join(output_dir, name), opset)
    model.config.save_pretrained(output_dir)
    if getattr(model, "generation_config", None) is not None and model.can_generate():
        model.generation_config.save_pretrained(output_dir)
    _save_tokenizer(model_id, output_dir, load_kwargs)
    with open(os.path.join(output_dir, EXPORT_INFO), "w", encoding="utf-8") as f:
        json.dump({"task": task, "architecture": type(model).__name__, "files": {
            name: {"inputs": list(graph.input_names), "outputs": list(graph.output_names)}
            for name, graph in graphs.items()}}, f, indent=2)
    return max(validate_onnx(graph, os.path.join(output_dir, name), atol) for name, graph in graphs.items())


def record(graph, path: str, opset: int | None = None):
    """torch.onnx.export of the graph's wrapper, its axes dynamic, the weights inside the file."""
    graph.module.eval()
    with torch.no_grad():
        torch.onnx.export(graph.module, graph.example, path, dynamo=True, input_names=list(graph.input_names),
                          output_names=list(graph.output_names), dynamic_shapes=graph.dynamic, opset_version=opset,
                          external_data=False, verbose=False)


def _save_tokenizer(model_id, output_dir, load_kwargs):
    from ..auto import AutoTokenizer

    hub = {k: v for k, v in load_kwargs.items() if k in ("cache_dir", "revision", "token", "local_files_only")}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_id), **hub)
    except OSError:  # a checkpoint without tokenizer files: the graph is still usable with ids
        return
    tokenizer.save_pretrained(output_dir)


def validate_onnx(graph, path: str, atol: float = TOLERANCE) -> float:
    """Run the file in ONNX Runtime on the graph's test cases and compare with PyTorch -> the largest difference
    (over the positions that count); raises ValueError above `atol`."""
    from .runtime import session

    runtime = session(path)
    worst = 0.0
    for args, counts in graph.cases:
        with torch.no_grad():
            expected = graph.module(*args)
        got = runtime.run(list(graph.output_names), {n: a.numpy() for n, a in zip(graph.input_names, args)})
        for name, want, have in zip(graph.output_names, expected, got):
            difference = (torch.from_numpy(have) - want).abs()
            keep = (counts or {}).get(name)
            if keep is not None:
                difference = difference * keep
            worst = max(worst, float(difference.max()) if difference.numel() else 0.0)
    if worst > atol:
        raise ValueError(f"The ONNX export in {path} differs from PyTorch by {worst:.3g} (more than {atol:g}); "
                         f"the file is not reliable.")
    return worst
