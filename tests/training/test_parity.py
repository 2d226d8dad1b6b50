"""Same weights, data and seed: leanformers' Trainer reproduces the reference Trainer's losses, learning rates,
gradient norms, evaluation and predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .conftest import accuracy, causal_data, classification_data, default_args, run_trainer, step_logs


def _assert_same_logs(ours, theirs, atol=1e-4):
    assert len(ours) == len(theirs) > 0
    for mine, ref in zip(ours, theirs):
        assert mine["step"] == ref["step"] and mine["epoch"] == pytest.approx(ref["epoch"])
        assert mine["loss"] == pytest.approx(ref["loss"], abs=atol)
        assert mine["learning_rate"] == pytest.approx(ref["learning_rate"], rel=1e-9, abs=1e-15)
        assert mine["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-3, abs=1e-5)


def _assert_same_weights(ours, theirs, atol=1e-4):
    mine, ref = ours.model.state_dict(), theirs.model.state_dict()
    for key, value in ref.items():
        torch.testing.assert_close(mine[key], value, atol=atol, rtol=1e-3, msg=key)


def test_classification_training_matches_reference(tiny_bert_dir, tmp_path):
    """20 optimiser steps of AdamW (weight decay, clipping) + linear warm-up, gradient accumulation 2, shuffled
    batches across an epoch boundary, dropout on: every logged loss within 1e-4, identical learning rates."""
    train, held_out = classification_data(72), classification_data(10, seed=2)
    args = default_args(tmp_path, gradient_accumulation_steps=2, max_steps=20, warmup_steps=4, weight_decay=0.01,
                        lr_scheduler_type="linear")
    runs = {lib: run_trainer(lib, tiny_bert_dir, train, args, eval_dataset=held_out, compute_metrics=accuracy)
            for lib in ("reference", "ours")}
    ours, theirs = runs["ours"], runs["reference"]
    assert len(step_logs(ours)) == 20
    _assert_same_logs(step_logs(ours), step_logs(theirs))
    _assert_same_weights(ours, theirs)
    assert ours.state.log_history[-1]["train_loss"] == pytest.approx(theirs.state.log_history[-1]["train_loss"],
                                                                     abs=1e-4)
    mine, ref = ours.evaluate(), theirs.evaluate()
    assert {k for k in mine if not k.endswith(("runtime", "per_second"))} == \
        {k for k in ref if not k.endswith(("runtime", "per_second"))} == {"eval_loss", "eval_accuracy", "epoch"}
    assert mine["eval_loss"] == pytest.approx(ref["eval_loss"], abs=1e-4)
    assert mine["eval_accuracy"] == ref["eval_accuracy"]


def test_causal_lm_training_evaluation_and_prediction_match_reference(tiny_gpt2_dir, tmp_path):
    """The loss is normalised by the label count of the whole accumulated batch (num_items_in_batch), with a
    cosine schedule whose warm-up is a fraction of the run; evaluate() and predict() agree with a ragged last
    batch."""
    train, held_out = causal_data(40), causal_data(10, seed=3)
    args = default_args(tmp_path, gradient_accumulation_steps=2, max_steps=6, warmup_steps=0.3,
                        lr_scheduler_type="cosine", weight_decay=0.01)
    runs = {lib: run_trainer(lib, tiny_gpt2_dir, train, args, head="AutoModelForCausalLM", eval_dataset=held_out)
            for lib in ("reference", "ours")}
    ours, theirs = runs["ours"], runs["reference"]
    assert ours.model_accepts_loss_kwargs and theirs.model_accepts_loss_kwargs
    _assert_same_logs(step_logs(ours), step_logs(theirs))
    assert ours.evaluate()["eval_loss"] == pytest.approx(theirs.evaluate()["eval_loss"], abs=1e-4)
    mine, ref = ours.predict(held_out[:6]), theirs.predict(held_out[:6])
    assert mine.predictions.shape == ref.predictions.shape == (6, 12, 99)
    np.testing.assert_allclose(mine.predictions, ref.predictions, atol=1e-4)
    np.testing.assert_array_equal(mine.label_ids, ref.label_ids)
    assert mine.metrics["test_loss"] == pytest.approx(ref.metrics["test_loss"], abs=1e-4)


def test_label_smoothing_matches_reference(tiny_bert_dir, tmp_path):
    train = classification_data(24, seed=5)
    args = default_args(tmp_path, max_steps=4, label_smoothing_factor=0.1, lr_scheduler_type="constant")
    runs = {lib: run_trainer(lib, tiny_bert_dir, train, args) for lib in ("reference", "ours")}
    _assert_same_logs(step_logs(runs["ours"]), step_logs(runs["reference"]))


def test_every_dataset_kind_trains_identically(tiny_bert_dir, tmp_path):
    """A datasets.Dataset (with a text column the model does not take), a torch Dataset and a list of dicts give
    the same batches, hence the same losses."""
    import datasets

    rows = classification_data(24, seed=4)

    class TorchDataset(torch.utils.data.Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, index):
            return {**rows[index], "text": "unused"}

    hf = datasets.Dataset.from_list([{**row, "text": "unused"} for row in rows])
    args = default_args(tmp_path, max_steps=3)
    losses = [[h["loss"] for h in step_logs(run_trainer("ours", tiny_bert_dir, data, args))]
              for data in (rows, TorchDataset(), hf)]
    assert losses[0] == losses[1] == losses[2]
    assert len(losses[0]) == 3


SCHEDULES = [
    ("linear", {}), ("cosine", {}), ("cosine", {"num_cycles": 1.5}), ("cosine_with_restarts", {"num_cycles": 3}),
    ("polynomial", {"power": 2.0, "lr_end": 1e-4}), ("constant", {}), ("constant_with_warmup", {}),
    ("inverse_sqrt", {}), ("inverse_sqrt", {"timescale": 7}), ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
    ("cosine_with_min_lr", {"min_lr": 0.02}), ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.05}),
    ("cosine_warmup_with_min_lr", {"min_lr_rate": 0.05, "warmup_lr_rate": 0.2}),
    ("warmup_stable_decay", {"num_decay_steps": 6}),
    ("warmup_stable_decay", {"num_decay_steps": 8, "warmup_type": "cosine", "decay_type": "1-sqrt",
                             "min_lr_ratio": 0.1}),
    ("warmup_stable_decay", {"num_decay_steps": 5, "warmup_type": "1-sqrt", "decay_type": "linear"}),
]


def _lr_curve(lib, name, kwargs, steps=30):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = lib.get_scheduler(name, optimizer, num_warmup_steps=5, num_training_steps=24,
                                  scheduler_specific_kwargs=dict(kwargs))
    curve = []
    for _ in range(steps):
        curve.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return curve


@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULES)])
def test_learning_rate_curves_match_reference(name, kwargs):
    import transformers

    import leanformers

    ours, theirs = _lr_curve(leanformers, name, kwargs), _lr_curve(transformers, name, kwargs)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)
    assert len(set(ours)) > 1 or name == "constant"


def test_named_schedule_functions_match_reference():
    import transformers

    import leanformers

    cases = [("get_constant_schedule", {}), ("get_constant_schedule_with_warmup", {"num_warmup_steps": 3}),
             ("get_linear_schedule_with_warmup", {"num_warmup_steps": 3, "num_training_steps": 12}),
             ("get_cosine_schedule_with_warmup", {"num_warmup_steps": 3, "num_training_steps": 12}),
             ("get_cosine_with_hard_restarts_schedule_with_warmup",
              {"num_warmup_steps": 2, "num_training_steps": 12, "num_cycles": 2}),
             ("get_polynomial_decay_schedule_with_warmup", {"num_warmup_steps": 2, "num_training_steps": 12})]
    for name, kwargs in cases:
        curves = []
        for lib in (leanformers, transformers):
            optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
            scheduler = getattr(lib, name)(optimizer, **kwargs)
            curve = []
            for _ in range(15):
                curve.append(scheduler.get_last_lr()[0])
                optimizer.step()
                scheduler.step()
            curves.append(curve)
        assert curves[0] == pytest.approx(curves[1], rel=1e-12), name


def test_reduce_on_plateau_matches_reference():
    import transformers

    import leanformers

    metrics = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8]
    curves = []
    for lib in (leanformers, transformers):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
        scheduler = lib.get_scheduler("reduce_lr_on_plateau", optimizer,
                                      scheduler_specific_kwargs={"patience": 1, "factor": 0.5})
        curve = []
        for value in metrics:
            scheduler.step(value)
            curve.append(optimizer.param_groups[0]["lr"])
        curves.append(curve)
    assert curves[0] == curves[1] and len(set(curves[0])) > 1


def test_optimizer_groups_match_reference(tiny_bert_dir, tmp_path):
    """No weight decay on biases and LayerNorm weights, decay elsewhere: the same parameter names as Transformers."""
    import transformers

    import leanformers
    from leanformers.training.optimization import get_decay_parameter_names

    ours = leanformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    reference = transformers.Trainer(model=theirs, args=transformers.TrainingArguments(str(tmp_path),
                                                                                        report_to="none"))
    assert sorted(get_decay_parameter_names(ours)) == sorted(reference.get_decay_parameter_names(theirs))
    assert any("LayerNorm" in n for n, _ in ours.named_parameters())
    assert not any("LayerNorm" in n or n.endswith("bias") for n in get_decay_parameter_names(ours))


def test_iterable_dataset_matches_reference(tiny_bert_dir, tmp_path):
    """A dataset without a length: max_steps bounds the run, and the data restarts when exhausted."""
    rows = classification_data(24, seed=10)

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(rows)

    args = default_args(tmp_path, max_steps=8)
    runs = {lib: run_trainer(lib, tiny_bert_dir, Stream(), args) for lib in ("reference", "ours")}
    _assert_same_logs(step_logs(runs["ours"]), step_logs(runs["reference"]))
    assert runs["ours"].evaluate(Stream())["eval_loss"] == pytest.approx(
        runs["reference"].evaluate(Stream())["eval_loss"], abs=1e-5)
