"""Evaluation and prediction loops of the Trainer: batched no-grad passes, gathered across ranks, then metrics."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..errors import ConfigError
from .data import build_eval_dataloader
from .distributed import gather_arrays, is_fsdp
from .utils import (EvalLoopOutput, EvalPrediction, PredictionOutput, denumpify_detensorize, find_batch_size,
                    has_length, nested_concat, nested_detach, nested_numpify, speed_metrics)


def _map_leaves(function, value):
    if isinstance(value, (list, tuple)):
        return type(value)(_map_leaves(function, v) for v in value)
    if isinstance(value, dict):
        return type(value)({k: _map_leaves(function, v) for k, v in value.items()})
    return function(value)


def _keep_first(count: int):
    """A function cutting every array of a (nested) value to its first `count` rows (a scalar becomes one row,
    so that per-batch scalars such as a loss among the outputs concatenate into one value per batch)."""
    return lambda value: _map_leaves(lambda array: np.atleast_1d(array)[:count], value)


def _gather(value):
    """numpy leaves -> every rank's piece concatenated in rank order (sequence axes padded with -100)."""
    def gather_leaf(array):
        pieces = gather_arrays(array)
        result = pieces[0]
        for piece in pieces[1:]:
            result = nested_concat(result, piece, padding_index=-100)
        return result
    return _map_leaves(gather_leaf, value)


class _Collected:
    """Per-batch arrays collected during an evaluation, concatenated (with -100 padding) at the end."""

    def __init__(self, concat: bool = True):
        self.concat, self.value = concat, None

    def add(self, value):
        if not self.concat:
            self.value = (self.value or []) + [value]
        else:
            self.value = value if self.value is None else nested_concat(self.value, value, padding_index=-100)

    def result(self, num_samples: int | None):
        if self.value is None or not self.concat or num_samples is None:
            return self.value
        return _map_leaves(lambda array: array[:num_samples], self.value)


class EvaluationMixin:
    """evaluate() / predict() for Trainer."""

    def get_eval_dataloader(self, eval_dataset=None):
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        if isinstance(dataset, str):
            dataset = self.eval_dataset[dataset]
        if dataset is None:
            raise ConfigError("Evaluation needs an eval_dataset: pass it to Trainer(...) or to evaluate(...).")
        dataset, collator = self._prepare_dataset(dataset, "evaluation")
        return build_eval_dataloader(dataset, self.args, collator)

    def get_test_dataloader(self, test_dataset):
        dataset, collator = self._prepare_dataset(test_dataset, "test")
        return build_eval_dataloader(dataset, self.args, collator)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        """Loss (and compute_metrics results) on the evaluation data, keys prefixed `eval_`; also logged."""
        override = eval_dataset is not None
        datasets = eval_dataset if override else self.eval_dataset
        if isinstance(datasets, dict):
            metrics = {}
            for name, dataset in datasets.items():
                metrics.update(self.evaluate(dataset if override else name, ignore_keys,
                                             f"{metric_key_prefix}_{name}"))
            return metrics
        dataloader = self.get_eval_dataloader(eval_dataset)
        start = time.time()
        output = self.evaluation_loop(dataloader, "Evaluation",
                                      prediction_loss_only=True if self.compute_metrics is None else None,
                                      ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        total = self.args.eval_batch_size * self.args.world_size
        output.metrics.update(speed_metrics(metric_key_prefix, start, num_samples=output.num_samples,
                                            num_steps=math.ceil(output.num_samples / total)))
        self.log(output.metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, output.metrics)
        return output.metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test") -> PredictionOutput:
        """Predictions (numpy) for `test_dataset`, its label ids and metrics when it has labels."""
        dataloader = self.get_test_dataloader(test_dataset)
        start = time.time()
        output = self.evaluation_loop(dataloader, "Prediction", ignore_keys=ignore_keys,
                                      metric_key_prefix=metric_key_prefix)
        total = self.args.eval_batch_size * self.args.world_size
        output.metrics.update(speed_metrics(metric_key_prefix, start, num_samples=output.num_samples,
                                            num_steps=math.ceil(output.num_samples / total)))
        self.control = self.callback_handler.on_predict(self.args, self.state, self.control, output.metrics)
        return PredictionOutput(output.predictions, output.label_ids, output.metrics)

    def _eval_model(self):
        args = self.args
        model = self.model_wrapped if is_fsdp(self.model_wrapped) else self.model
        if not self.is_in_train and (args.fp16_full_eval or args.bf16_full_eval):
            model = model.to(dtype=torch.float16 if args.fp16_full_eval else torch.bfloat16, device=args.device)
        return model

    def evaluation_loop(self, dataloader, description: str, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix: str = "eval") -> EvalLoopOutput:
        """Run the model over `dataloader` without gradients and collect losses, predictions and labels."""
        args = self.args
        loss_only = prediction_loss_only if prediction_loss_only is not None else args.prediction_loss_only
        model = self._eval_model()
        model.eval()
        self.callback_handler.eval_dataloader = dataloader
        collected = {name: _Collected(args.eval_do_concat_batches) for name in ("losses", "preds", "labels",
                                                                              "inputs")}
        seen = 0
        valid_sizes = getattr(getattr(dataloader, "batch_sampler", None), "valid_sizes", None)
        for step, inputs in enumerate(dataloader):
            # with several ranks, the last steps may hold stand-in examples that must not count
            size = valid_sizes[step] if valid_sizes is not None else find_batch_size(inputs) or 1
            seen += size
            loss, logits, labels = self.prediction_step(model, inputs, loss_only, ignore_keys=ignore_keys)
            keep = _keep_first(size)
            if loss is not None:
                full = getattr(self, "_loss_weight_is_batch_size", False) and size > 0
                weight = args.eval_batch_size if full else size
                collected["losses"].add(_gather(loss.float().reshape(1).repeat(weight).cpu().numpy()))
            if "inputs" in args.include_for_metrics:
                main = getattr(self.model, "main_input_name", "input_ids")
                collected["inputs"].add(_gather(keep(nested_numpify(inputs[main]))))
            if logits is not None:
                if self.preprocess_logits_for_metrics is not None:
                    logits = self.preprocess_logits_for_metrics(logits, labels)
                collected["preds"].add(_gather(keep(nested_numpify(logits))))
            if labels is not None:
                collected["labels"].add(_gather(keep(nested_numpify(labels))))
            self.control = self.callback_handler.on_prediction_step(args, self.state, self.control)
        num_samples = self._num_samples(dataloader, seen)
        # losses already hold one value per counted example (see the weights above): never cut them
        results = {name: c.result(None if name == "losses" else num_samples) for name, c in collected.items()}
        metrics = self._metrics(results, metric_key_prefix)
        return EvalLoopOutput(results["preds"], results["labels"], metrics, num_samples)

    @staticmethod
    def _num_samples(dataloader, seen: int) -> int:
        dataset = getattr(dataloader, "dataset", None)
        if has_length(dataset) and len(dataset):
            return len(dataset)
        return seen

    def _metrics(self, results: dict, prefix: str) -> dict:
        metrics = {}
        if self.compute_metrics is not None and results["preds"] is not None and results["labels"] is not None:
            extra = {}
            if "loss" in self.args.include_for_metrics:
                extra["losses"] = results["losses"]
            if "inputs" in self.args.include_for_metrics:
                extra["inputs"] = results["inputs"]
            metrics = self.compute_metrics(EvalPrediction(results["preds"], results["labels"], **extra))
        metrics = denumpify_detensorize(dict(metrics or {}))
        losses = results["losses"]
        if isinstance(losses, list):
            losses = np.concatenate(losses) if losses else None
        if isinstance(losses, np.ndarray) and losses.size:
            finite = np.isfinite(losses)
            if self.args.logging_nan_inf_filter and finite.any():
                losses = losses[finite]
            metrics[f"{prefix}_loss"] = losses.mean().item()
        # keys that already carry the prefix (the loss) first, then compute_metrics' own, prefixed: the
        # reference's order
        prefixed = {key: value for key, value in metrics.items() if key.startswith(f"{prefix}_")}
        return {**prefixed, **{f"{prefix}_{key}": value for key, value in metrics.items() if key not in prefixed}}

    def prediction_step(self, model, inputs, prediction_loss_only: bool, ignore_keys=None):
        """(loss, logits, labels) for one batch without gradients; logits is None when only the loss is wanted."""
        has_labels = bool(self.label_names) and all(inputs.get(k) is not None for k in self.label_names)
        return_loss = inputs.get("return_loss")
        loss_without_labels = not self.label_names and (self.can_return_loss if return_loss is None else return_loss)
        inputs = self._prepare_inputs(inputs)
        if ignore_keys is None:
            configured = getattr(getattr(self.model, "config", None), "keys_to_ignore_at_inference", None)
            ignore_keys = list(configured) if configured is not None else ["past_key_values"]
        labels = None
        if has_labels or loss_without_labels:
            labels = nested_detach(tuple(inputs.get(name) for name in self.label_names))
            labels = labels[0] if len(labels) == 1 else labels
        with torch.no_grad():
            if has_labels or loss_without_labels:
                # each batch's loss is its own mean, as with one process
                num_items = self._num_items_in_batch([inputs], across_processes=False)
                with self.compute_loss_context_manager():
                    loss, outputs = self.compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items)
                loss = loss.detach().mean()
                skip = set(ignore_keys) | {"loss"}
            else:
                loss = None
                with self.compute_loss_context_manager():
                    outputs = model(**inputs)
                skip = set(ignore_keys)
            if isinstance(outputs, dict):
                logits = tuple(v for k, v in outputs.items() if k not in skip and v is not None)
            else:
                logits = outputs[1:] if loss is not None else outputs
        if prediction_loss_only:
            return loss, None, None
        logits = nested_detach(logits)
        if len(logits) == 1:
            logits = logits[0]
        return loss, logits, labels
