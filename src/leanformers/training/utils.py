"""Training utilities: seeding, result containers, checkpoint folders, speed metrics, label smoothing."""

from __future__ import annotations

import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

PREFIX_CHECKPOINT_DIR = "checkpoint"
_CHECKPOINT_RE = re.compile(r"^" + PREFIX_CHECKPOINT_DIR + r"\-(\d+)$")


def set_seed(seed: int, deterministic: bool = False):
    """Seed `random`, numpy and torch (CPU and every GPU) so runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)


def enable_full_determinism(seed: int, warn_only: bool = False):
    """set_seed plus deterministic kernels (slower), for bit-for-bit repeatable runs."""
    os.environ["CUDA_LAUNCH_BLOCKING"] = "1"
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"
    set_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class EvalPrediction:
    """What `compute_metrics` receives: predictions and label ids (numpy), optionally inputs and losses.

    Unpacks like a tuple: `logits, labels = eval_pred`.
    """

    def __init__(self, predictions, label_ids, inputs=None, losses=None):
        self.predictions = predictions
        self.label_ids = label_ids
        self.inputs = inputs
        self.losses = losses
        self.elements = (predictions, label_ids) + tuple(x for x in (inputs, losses) if x is not None)

    def __iter__(self):
        return iter(self.elements)

    def __getitem__(self, idx):
        if idx < 0 or idx >= len(self.elements):
            raise IndexError("tuple index out of range")
        return self.elements[idx]

    def __len__(self):
        return len(self.elements)


class EvalLoopOutput(NamedTuple):
    predictions: object
    label_ids: object
    metrics: dict | None
    num_samples: int | None


class PredictionOutput(NamedTuple):
    """`Trainer.predict` result: predictions, label ids (when the data had labels) and metrics."""

    predictions: object
    label_ids: object
    metrics: dict | None


class TrainOutput(NamedTuple):
    """`Trainer.train` result: the last optimiser step, the mean training loss and the run's metrics."""

    global_step: int
    training_loss: float
    metrics: dict


def get_last_checkpoint(folder) -> str | None:
    """The `checkpoint-<step>` sub-folder of `folder` with the highest step, or None."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return None
    steps = [(int(m.group(1)), name) for name in os.listdir(folder)
             if (m := _CHECKPOINT_RE.match(name)) and os.path.isdir(os.path.join(folder, name))]
    return os.path.join(folder, max(steps)[1]) if steps else None


def sorted_checkpoints(output_dir, best_model_checkpoint: str | None = None) -> list[str]:
    """Checkpoint folders oldest first by step; the best one moves just before the newest so rotation keeps it."""
    found = []
    for path in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        match = _CHECKPOINT_RE.match(path.name)
        if match and path.is_dir():
            found.append((int(match.group(1)), str(path)))
    ordered = [path for _, path in sorted(found)]
    if best_model_checkpoint is not None:
        best = str(Path(best_model_checkpoint))
        if best in ordered and ordered[-1] != best:
            newest = ordered[-1]
            ordered = [p for p in ordered if p not in (best, newest)] + [best, newest]
    return ordered


def rotate_checkpoints(output_dir, save_total_limit: int | None, best_model_checkpoint: str | None = None):
    """Delete the oldest checkpoints beyond `save_total_limit`; never the newest nor the best one."""
    if not save_total_limit or save_total_limit <= 0:
        return
    checkpoints = sorted_checkpoints(output_dir)
    if len(checkpoints) <= save_total_limit:
        return
    protected = {checkpoints[-1]}
    if best_model_checkpoint is not None:
        protected.add(str(Path(best_model_checkpoint)))
    remaining = len(checkpoints)
    keep = max(save_total_limit, len(protected))
    for checkpoint in checkpoints:
        if remaining <= keep:
            break
        if checkpoint not in protected:
            shutil.rmtree(checkpoint, ignore_errors=True)
            remaining -= 1


def speed_metrics(split: str, start_time: float, num_samples=None, num_steps=None, num_tokens=None) -> dict:
    """`<split>_runtime` and per-second rates since `start_time`."""
    runtime = time.time() - start_time
    result = {f"{split}_runtime": round(runtime, 4)}
    if runtime == 0:
        return result
    for name, count in (("samples", num_samples), ("steps", num_steps), ("tokens", num_tokens)):
        if count is not None:
            result[f"{split}_{name}_per_second"] = round(count / runtime, 3)
    return result


def denumpify_detensorize(metrics):
    """Turn numpy scalars and 0-d tensors in (nested) metrics into Python numbers so they serialise to JSON."""
    if isinstance(metrics, (list, tuple)):
        return type(metrics)(denumpify_detensorize(m) for m in metrics)
    if isinstance(metrics, dict):
        return type(metrics)({k: denumpify_detensorize(v) for k, v in metrics.items()})
    if isinstance(metrics, np.generic):
        return metrics.item()
    if isinstance(metrics, torch.Tensor) and metrics.numel() == 1:
        return metrics.item()
    return metrics


def has_length(dataset) -> bool:
    """Whether `len(dataset)` works (iterable datasets may not have one)."""
    try:
        return len(dataset) is not None
    except (TypeError, AttributeError, NotImplementedError):
        return False


class LabelSmoother:
    """Cross-entropy with label smoothing computed from a model output's logits, ignoring `ignore_index` labels."""

    def __init__(self, epsilon: float = 0.1, ignore_index: int = -100):
        self.epsilon = epsilon
        self.ignore_index = ignore_index

    def __call__(self, model_output, labels, shift_labels: bool = False, num_items_in_batch=None):
        logits = model_output["logits"] if isinstance(model_output, dict) else model_output[0]
        if shift_labels:
            logits, labels = logits[..., :-1, :].contiguous(), labels[..., 1:].contiguous()
        neg_log_probs = -F.log_softmax(logits, dim=-1)
        if labels.dim() == neg_log_probs.dim() - 1:
            labels = labels.unsqueeze(-1)
        ignored = labels.eq(self.ignore_index)
        # gather cannot take -100; those positions are zeroed below anyway
        nll = neg_log_probs.gather(dim=-1, index=labels.clamp(min=0)).masked_fill(ignored, 0.0)
        uniform = neg_log_probs.sum(dim=-1, keepdim=True, dtype=torch.float32).masked_fill(ignored, 0.0)
        if num_items_in_batch is None:
            count = ignored.numel() - ignored.long().sum()
        elif torch.is_tensor(num_items_in_batch):
            count = num_items_in_batch.to(nll.device)
        else:
            count = num_items_in_batch
        nll_loss = nll.sum() / count
        smooth_loss = uniform.sum() / (count * neg_log_probs.shape[-1])
        return (1 - self.epsilon) * nll_loss + self.epsilon * smooth_loss


def nested_detach(tensors):
    """Detach every tensor in a (nested) tuple/list/dict."""
    if isinstance(tensors, (list, tuple)):
        return type(tensors)(nested_detach(t) for t in tensors)
    if isinstance(tensors, dict):
        return type(tensors)({k: nested_detach(v) for k, v in tensors.items()})
    return tensors.detach() if isinstance(tensors, torch.Tensor) else tensors


def pad_and_concatenate(first: np.ndarray, second: np.ndarray, padding_index: int = -100) -> np.ndarray:
    """Concatenate along the batch axis, right-padding the sequence axis with `padding_index` when lengths differ."""
    if first.ndim == 1 or first.shape[1:] == second.shape[1:]:
        return np.concatenate((first, second), axis=0)
    shape = (first.shape[0] + second.shape[0], max(first.shape[1], second.shape[1])) + first.shape[2:]
    result = np.full(shape, padding_index, dtype=np.result_type(first, second))
    result[: first.shape[0], : first.shape[1]] = first
    result[first.shape[0]:, : second.shape[1]] = second
    return result


def nested_concat(first, second, padding_index: int = -100):
    """`pad_and_concatenate` applied leaf by leaf over matching (nested) tuples/lists/dicts of arrays."""
    if isinstance(first, (list, tuple)):
        return type(first)(nested_concat(a, b, padding_index) for a, b in zip(first, second))
    if isinstance(first, dict):
        return type(first)({k: nested_concat(v, second[k], padding_index) for k, v in first.items()})
    return pad_and_concatenate(first, second, padding_index)


def nested_numpify(tensors):
    """Tensors (nested) -> numpy arrays on the CPU; bfloat16 goes through float32 since numpy lacks it."""
    if isinstance(tensors, (list, tuple)):
        return type(tensors)(nested_numpify(t) for t in tensors)
    if isinstance(tensors, dict):
        return type(tensors)({k: nested_numpify(v) for k, v in tensors.items()})
    tensor = tensors.cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def find_batch_size(tensors) -> int | None:
    """The first dimension of the first tensor found in a (nested) batch."""
    if isinstance(tensors, (list, tuple)):
        for t in tensors:
            if (size := find_batch_size(t)) is not None:
                return size
    elif isinstance(tensors, dict):
        for value in tensors.values():
            if (size := find_batch_size(value)) is not None:
                return size
    elif isinstance(tensors, (torch.Tensor, np.ndarray)):
        return tensors.shape[0] if tensors.ndim >= 1 else None
    return None
