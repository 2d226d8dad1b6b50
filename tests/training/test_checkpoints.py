"""Checkpoints: their files, rotation, exact resumption, best-model tracking and early stopping."""

from __future__ import annotations

import json
import os

import pytest
import torch

from leanformers import TrainerCallback

from .conftest import accuracy, classification_data, default_args, run_trainer, step_logs

CHECKPOINT_FILES = {"config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth",
                    "trainer_state.json", "training_args.bin"}


class StopAt(TrainerCallback):
    """Ends the run after optimiser step `step` (its checkpoint is written first), like an interrupted job."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _weights(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_interrupted_then_resumed_run_ends_with_identical_weights(tiny_bert_dir, tmp_path):
    """Dropout on, shuffled data, gradient accumulation: resuming mid-epoch (newest checkpoint, True) and at an epoch
    boundary (a path) both reproduce the uninterrupted run bit for bit, losses included."""
    train = classification_data(40, seed=3)  # 10 batches = 5 optimiser steps per epoch
    settings = dict(gradient_accumulation_steps=2, max_steps=8, warmup_steps=2, weight_decay=0.01,
                    save_strategy="steps", save_steps=1)
    full = run_trainer("ours", tiny_bert_dir, train, default_args(tmp_path / "full", **settings))
    expected, expected_logs = _weights(full), step_logs(full)

    interrupted = default_args(tmp_path / "interrupted", **{**settings, "save_steps": 3})
    first = run_trainer("ours", tiny_bert_dir, train, interrupted, callbacks=[StopAt(3)])
    assert first.state.global_step == 3
    import leanformers

    model = leanformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    resumed = leanformers.Trainer(model=model, args=leanformers.TrainingArguments(**interrupted), train_dataset=train)
    resumed.train(resume_from_checkpoint=True)
    _assert_identical(_weights(resumed), expected)
    assert [h["loss"] for h in step_logs(resumed)] == [h["loss"] for h in expected_logs]

    model = leanformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    at_epoch_end = leanformers.Trainer(model=model, train_dataset=train,
                                       args=leanformers.TrainingArguments(**default_args(tmp_path / "b", **settings)))
    at_epoch_end.train(resume_from_checkpoint=str(tmp_path / "full" / "checkpoint-5"))
    _assert_identical(_weights(at_epoch_end), expected)


def test_checkpoint_folders_rotate_and_load_in_the_reference(tiny_bert_dir, tmp_path):
    import transformers

    args = default_args(tmp_path, max_steps=5, save_strategy="steps", save_steps=1, save_total_limit=2)
    trainer = run_trainer("ours", tiny_bert_dir, classification_data(20), args)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint-4", "checkpoint-5"]
    folder = tmp_path / "checkpoint-5"
    assert CHECKPOINT_FILES <= set(os.listdir(folder))
    state = transformers.TrainerState.load_from_json(str(folder / "trainer_state.json"))
    assert state.global_step == 5 and state.max_steps == 5 and len(state.log_history) == 5
    assert set(torch.load(folder / "optimizer.pt", weights_only=True)) == {"state", "param_groups"}
    assert torch.load(folder / "scheduler.pt", weights_only=True)["last_epoch"] == 5
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    for key, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, trainer.model.state_dict()[key], atol=0, rtol=0)


def test_checkpoints_resume_across_libraries(tiny_bert_dir, tmp_path):
    """Our checkpoint folders are the reference's format: each library resumes from the other's checkpoint and ends
    where the other's uninterrupted run ends."""
    import transformers

    import leanformers

    train = classification_data(24, seed=6)
    settings = dict(max_steps=6, save_strategy="steps", save_steps=3, weight_decay=0.01, warmup_steps=2)
    full = {lib: run_trainer(lib, tiny_bert_dir, train, default_args(tmp_path / lib, **settings))
            for lib in ("ours", "reference")}
    for lib, other in ((transformers, "ours"), (leanformers, "reference")):
        model = lib.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
        args = lib.TrainingArguments(**default_args(tmp_path / f"from_{other}", **settings))
        resumed = lib.Trainer(model=model, train_dataset=train, args=args)
        resumed.train(resume_from_checkpoint=str(tmp_path / other / "checkpoint-3"))
        for key, value in full[other].model.state_dict().items():
            torch.testing.assert_close(resumed.model.state_dict()[key], value, atol=1e-5, rtol=1e-4)


def test_best_model_tracking_and_early_stopping_follow_reference(tiny_bert_dir, tmp_path):
    """Evaluation every 4 steps on accuracy, patience 2: both libraries stop at the same step (well before
    max_steps), record the same best checkpoint (not the last one), and reload its weights at the end."""
    import transformers

    import leanformers

    train = classification_data(48, seed=8, learnable=True)
    held_out = classification_data(24, seed=9, learnable=True)
    runs = {}
    for name, lib in (("ours", leanformers), ("reference", transformers)):
        args = default_args(tmp_path / name, max_steps=60, learning_rate=1e-2, eval_strategy="steps", eval_steps=4,
                            save_strategy="steps", save_steps=4, load_best_model_at_end=True,
                            metric_for_best_model="accuracy", save_total_limit=1)
        library = "reference" if lib is transformers else "ours"
        runs[name] = run_trainer(library, tiny_bert_dir, train, args, eval_dataset=held_out,
                                 compute_metrics=accuracy,
                                 callbacks=[lib.EarlyStoppingCallback(early_stopping_patience=2)])
    ours, theirs = runs["ours"], runs["reference"]
    assert ours.state.global_step == theirs.state.global_step < 60
    assert ours.state.best_global_step == theirs.state.best_global_step < ours.state.global_step
    assert ours.state.best_metric == theirs.state.best_metric
    best = ours.state.best_model_checkpoint
    assert os.path.basename(best) == os.path.basename(theirs.state.best_model_checkpoint)
    assert sorted(os.listdir(tmp_path / "ours")) == [os.path.basename(best)]
    from safetensors.torch import load_file

    saved = load_file(os.path.join(best, "model.safetensors"))
    for key, value in saved.items():
        assert torch.equal(ours.model.state_dict()[key], value), key
    with open(os.path.join(best, "trainer_state.json")) as f:
        stored = json.load(f)["stateful_callbacks"]
    assert stored["EarlyStoppingCallback"]["args"]["early_stopping_patience"] == 2
    evals = [h for h in ours.state.log_history if "eval_accuracy" in h]
    ref_evals = [h for h in theirs.state.log_history if "eval_accuracy" in h]
    assert [h["eval_accuracy"] for h in evals] == [h["eval_accuracy"] for h in ref_evals]
    assert [h["eval_loss"] for h in evals] == pytest.approx([h["eval_loss"] for h in ref_evals], abs=1e-4)


@pytest.mark.parametrize("restore,stops_at", [(True, 4), (False, 6)])
def test_callback_state_restored_on_request(tiny_bert_dir, tmp_path, restore, stops_at):
    """Early stopping's patience count survives a resume with restore_callback_states_from_checkpoint=True."""
    import leanformers

    settings = default_args(tmp_path, max_steps=10, learning_rate=0.0, eval_strategy="steps", eval_steps=1,
                            save_strategy="steps", save_steps=1, metric_for_best_model="loss",
                            restore_callback_states_from_checkpoint=restore)
    train, held_out = classification_data(16), classification_data(4, seed=2)
    first = run_trainer("ours", tiny_bert_dir, train, settings, eval_dataset=held_out,
                        callbacks=[leanformers.EarlyStoppingCallback(3), StopAt(3)])
    assert first.state.global_step == 3
    resumed = leanformers.Trainer(
        model=leanformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir),
        args=leanformers.TrainingArguments(**settings), train_dataset=train, eval_dataset=held_out,
        callbacks=[leanformers.EarlyStoppingCallback(3)])
    resumed.train(resume_from_checkpoint=True)
    assert resumed.state.global_step == stops_at
