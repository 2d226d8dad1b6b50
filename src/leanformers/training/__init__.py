"""Training: TrainingArguments, Trainer / Seq2SeqTrainer, schedules, data collators, callbacks.

Names are resolved on first use, so importing this package does not import torch.
"""

from __future__ import annotations

import importlib

# public name -> module inside this package
_EXPORTS = {
    "TrainingArguments": "arguments", "Seq2SeqTrainingArguments": "arguments", "IntervalStrategy": "arguments",
    "SaveStrategy": "arguments", "SchedulerType": "arguments", "OptimizerNames": "arguments",
    "Trainer": "trainer", "Seq2SeqTrainer": "seq2seq",
    "TrainerCallback": "callbacks", "TrainerState": "callbacks", "TrainerControl": "callbacks",
    "CallbackHandler": "callbacks", "DefaultFlowCallback": "callbacks", "ProgressCallback": "callbacks",
    "PrinterCallback": "callbacks", "EarlyStoppingCallback": "callbacks", "ExportableState": "callbacks",
    "EvalPrediction": "utils", "PredictionOutput": "utils", "TrainOutput": "utils", "EvalLoopOutput": "utils",
    "set_seed": "utils", "enable_full_determinism": "utils", "get_last_checkpoint": "utils",
    "LabelSmoother": "utils", "MissingCheckpointError": "checkpointing",
    "default_data_collator": "collators", "DefaultDataCollator": "collators", "DataCollatorWithPadding": "collators",
    "DataCollatorForLanguageModeling": "collators", "DataCollatorForTokenClassification": "collators",
    "DataCollatorForSeq2Seq": "collators",
    "get_scheduler": "optimization", "get_constant_schedule": "optimization",
    "get_constant_schedule_with_warmup": "optimization", "get_linear_schedule_with_warmup": "optimization",
    "get_cosine_schedule_with_warmup": "optimization",
    "get_cosine_with_hard_restarts_schedule_with_warmup": "optimization",
    "get_polynomial_decay_schedule_with_warmup": "optimization", "get_inverse_sqrt_schedule": "optimization",
    "get_reduce_on_plateau_schedule": "optimization", "get_cosine_with_min_lr_schedule_with_warmup": "optimization",
    "get_cosine_with_min_lr_schedule_with_warmup_lr_rate": "optimization", "get_wsd_schedule": "optimization",
    "AdamW": "adamw",
    **{name: "glue" for name in (
        "InputExample", "InputFeatures", "DataProcessor", "glue_processors", "glue_output_modes",
        "glue_tasks_num_labels", "glue_convert_examples_to_features", "glue_compute_metrics")},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'leanformers.training' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
