"""TrainingArguments: reference defaults, old spellings, and contradictions refused with the fix."""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from leanformers import TrainingArguments
from leanformers.errors import ConfigError

# fields whose value depends on the environment or that leanformers deliberately reads differently
_SKIP = {"output_dir", "disable_tqdm", "report_to", "fsdp", "fsdp_config", "optim", "logging_dir", "run_name",
         "include_for_metrics", "warmup_ratio", "evaluation_strategy", "gradient_checkpointing",
         "gradient_checkpointing_kwargs", "overwrite_output_dir", "generation_config"}


def _value(value):
    return value.value if hasattr(value, "value") else value


def test_defaults_match_reference(tmp_path):
    import transformers

    ours = TrainingArguments(output_dir=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.TrainingArguments(output_dir=str(tmp_path))
    compared = 0
    for field in dataclasses.fields(ours):
        if field.name in _SKIP or not hasattr(theirs, field.name):
            continue
        assert _value(getattr(ours, field.name)) == _value(getattr(theirs, field.name)), field.name
        compared += 1
    assert compared > 60
    assert ours.optim.value == theirs.optim.value == "adamw_torch_fused"
    assert ours.report_to == theirs.report_to == []


def test_derived_values_match_reference(tmp_path):
    import transformers

    kwargs = dict(output_dir=str(tmp_path), eval_strategy="steps", logging_steps=7, load_best_model_at_end=True,
                  save_steps=14, warmup_steps=0.25)
    ours = TrainingArguments(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.TrainingArguments(**kwargs)
    for name in ("eval_steps", "do_eval", "metric_for_best_model", "greater_is_better"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.get_warmup_steps(101) == theirs.get_warmup_steps(101) == 26
    accuracy = TrainingArguments(output_dir=str(tmp_path), metric_for_best_model="accuracy")
    assert accuracy.greater_is_better is True


def test_old_spellings_are_accepted(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), evaluation_strategy="epoch", save_strategy="epoch",
                             warmup_ratio=0.1, load_best_model_at_end=True, metric_for_best_model="accuracy")
    assert args.eval_strategy == "epoch" and args.evaluation_strategy is None
    assert args.get_warmup_steps(95) == 10
    assert TrainingArguments(output_dir=str(tmp_path), warmup_steps=5, warmup_ratio=0.5).get_warmup_steps(100) == 5


@pytest.mark.parametrize("kwargs,message", [
    (dict(load_best_model_at_end=True, eval_strategy="epoch", save_strategy="steps"),
     "eval_strategy='epoch' and save_strategy='steps'"),
    (dict(load_best_model_at_end=True, eval_strategy="steps", eval_steps=3, save_steps=10), "round multiple"),
    (dict(fp16=True, bf16=True), "pick one"),
    (dict(fp16=True), "fp16=True needs a CUDA GPU.*bf16=True"),
    (dict(fp16_full_eval=True), "fp16_full_eval=True needs a CUDA GPU"),
    (dict(fp16=True, use_cpu=True), "fp16=True needs a CUDA GPU"),
    (dict(report_to="wandb"), "TrainerCallback"),
    (dict(eval_strategy="sometimes"), "'no', 'steps', 'epoch'"),
    (dict(lr_scheduler_type="triangle"), "'linear'"),
    (dict(logging_steps=2.5), "integer"),
    (dict(lr_scheduler_type="reduce_lr_on_plateau"), "eval_strategy"),
    (dict(fsdp="shard_everything"), "full_shard"),
    (dict(save_strategy="best"), "metric_for_best_model"),
    (dict(gradient_accumulation_steps=0), "at least 1"),
    (dict(push_to_hub=True), "upload_folder"),
])
def test_contradictions_raise_config_error(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainingArguments(output_dir=str(tmp_path), **kwargs)


def test_unknown_argument_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="learning_rat"):
        TrainingArguments(output_dir=str(tmp_path), learning_rat=1e-3)


def test_serialisation(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="epoch", save_strategy="epoch")
    as_dict = args.to_dict()
    assert as_dict["eval_strategy"] == "epoch" and as_dict["lr_scheduler_type"] == "linear"
    assert '"save_strategy": "epoch"' in args.to_json_string()
    import pickle

    assert pickle.loads(pickle.dumps(args)).to_dict() == as_dict
