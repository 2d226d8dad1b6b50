"""TrainingArguments that steer a run, each checked against the reference Trainer on the same weights and data:
Adam betas/epsilon, clipping, epoch strategies, warm-up as a ratio, best-model direction, rotation, label_names,
remove_unused_columns=False and DataLoader worker processes."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from .conftest import classification_data, default_args, run_trainer, step_logs


def _evals(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "eval_loss" in h]


def test_epoch_strategies_adam_settings_and_clipping_match_reference(tiny_bert_dir, tmp_path):
    """Three epochs evaluated and saved at each epoch end, keeping the highest eval loss (greater_is_better=True
    overrides the default for a loss), two checkpoints kept; Adam betas/epsilon and a max_grad_norm that clips."""
    train, held_out = classification_data(24, seed=11), classification_data(8, seed=12)
    settings = dict(num_train_epochs=3, eval_strategy="epoch", save_strategy="epoch", save_total_limit=2,
                    load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=True,
                    adam_beta1=0.8, adam_beta2=0.99, adam_epsilon=1e-6, max_grad_norm=0.2, weight_decay=0.05,
                    lr_scheduler_type="cosine", learning_rate=5e-3)
    # Transformers 5 dropped warmup_ratio (a float warmup_steps below 1 means the same); leanformers takes both
    runs = {"reference": run_trainer("reference", tiny_bert_dir, train,
                                     default_args(tmp_path / "reference", warmup_steps=0.2, **settings),
                                     eval_dataset=held_out),
            "ours": run_trainer("ours", tiny_bert_dir, train,
                                default_args(tmp_path / "ours", warmup_ratio=0.2, **settings), eval_dataset=held_out)}
    ours, theirs = runs["ours"], runs["reference"]
    logs, ref_logs = step_logs(ours), step_logs(theirs)
    assert len(logs) == len(ref_logs) == 18
    for mine, ref in zip(logs, ref_logs):
        assert mine["step"] == ref["step"] and mine["learning_rate"] == pytest.approx(ref["learning_rate"], rel=1e-9)
        assert mine["loss"] == pytest.approx(ref["loss"], abs=1e-4)
        assert mine["grad_norm"] == pytest.approx(ref["grad_norm"], rel=1e-3)
    assert max(h["grad_norm"] for h in logs) > 0.2  # the norm logged is before clipping: clipping did act
    evals, ref_evals = _evals(ours), _evals(theirs)
    assert [h["step"] for h in evals] == [h["step"] for h in ref_evals] == [6, 12, 18]
    assert [h["eval_loss"] for h in evals] == pytest.approx([h["eval_loss"] for h in ref_evals], abs=1e-4)
    losses = [h["eval_loss"] for h in evals]
    assert ours.state.best_global_step == theirs.state.best_global_step == 6 * (1 + losses.index(max(losses)))
    assert ours.state.best_metric == pytest.approx(theirs.state.best_metric, abs=1e-4)
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "reference"))
    for key, value in theirs.model.state_dict().items():  # both reloaded the best checkpoint
        torch.testing.assert_close(ours.model.state_dict()[key], value, atol=1e-4, rtol=1e-3, msg=key)


def test_epoch_logging_and_saving_only_the_best_match_reference(tiny_bert_dir, tmp_path):
    """logging_strategy='epoch' logs one mean loss per epoch; save_strategy='best' writes a checkpoint only when the
    evaluation improves on metric_for_best_model."""
    train, held_out = classification_data(12, seed=15), classification_data(8, seed=16)
    settings = dict(num_train_epochs=4, logging_strategy="epoch", eval_strategy="epoch", save_strategy="best",
                    metric_for_best_model="loss", learning_rate=2e-2, warmup_steps=0)
    runs = {lib: run_trainer(lib, tiny_bert_dir, train, default_args(tmp_path / lib, **settings),
                             eval_dataset=held_out) for lib in ("reference", "ours")}
    ours, theirs = runs["ours"], runs["reference"]
    logs, ref_logs = step_logs(ours), step_logs(theirs)
    assert [h["step"] for h in logs] == [h["step"] for h in ref_logs] == [3, 6, 9, 12]
    assert [h["loss"] for h in logs] == pytest.approx([h["loss"] for h in ref_logs], abs=1e-4)
    losses = [h["eval_loss"] for h in _evals(ours)]
    assert losses == pytest.approx([h["eval_loss"] for h in _evals(theirs)], abs=1e-4)
    improved = [f"checkpoint-{3 * (i + 1)}" for i, value in enumerate(losses) if value == min(losses[: i + 1])]
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "reference")) == sorted(improved)
    assert len(improved) < len(losses)  # an evaluation that did not improve wrote no checkpoint


class _Scorer(torch.nn.Module):
    """A plain torch model whose targets are called `target` (no 'label' in the name)."""

    def __init__(self):
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(99, 3)

    def forward(self, input_ids, target=None):
        logits = self.bag(input_ids)
        loss = None if target is None else torch.nn.functional.cross_entropy(logits, target)
        return {"loss": loss, "logits": logits} if loss is not None else {"logits": logits}


def _scorer_rows(n: int, seed: int) -> list[dict]:
    return [{"input_ids": row["input_ids"], "target": row["labels"], "text": "not a model input"}
            for row in classification_data(n, seed=seed)]


def _collate(rows):
    """Builds the batch itself, so it runs with remove_unused_columns=False (the text column reaches it)."""
    assert all("text" in row for row in rows)
    return {"input_ids": torch.tensor([row["input_ids"] for row in rows]),
            "target": torch.tensor([row["target"] for row in rows])}


def _scorer_run(lib, folder, train, held_out, **overrides):
    torch.manual_seed(0)
    model = _Scorer()
    args = lib.TrainingArguments(**default_args(folder, max_steps=5, learning_rate=0.1, **overrides))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = lib.Trainer(model=model, args=args, train_dataset=train, eval_dataset=held_out,
                              data_collator=_collate, compute_metrics=lambda p: {"labels": float(p.label_ids.sum())})
        trainer.train()
        return trainer, trainer.predict(held_out)


@pytest.mark.parametrize("label_names", [None, ["target"]])
def test_label_names_custom_collator_and_workers_match_reference(tmp_path, label_names):
    """label_names tells the Trainer which inputs are targets (for evaluation losses and label_ids); with
    remove_unused_columns=False every column reaches the collator; two DataLoader workers change nothing."""
    import transformers

    import leanformers

    train, held_out = _scorer_rows(20, seed=13), _scorer_rows(6, seed=14)
    overrides = dict(label_names=label_names, remove_unused_columns=False, dataloader_num_workers=2)
    ours, ours_prediction = _scorer_run(leanformers, tmp_path / "ours", train, held_out, **overrides)
    theirs, ref_prediction = _scorer_run(transformers, tmp_path / "reference", train, held_out, **overrides)
    assert [h["loss"] for h in step_logs(ours)] == pytest.approx([h["loss"] for h in step_logs(theirs)], abs=1e-6)
    if label_names is None:
        # no argument is named like a label: no labels nor loss are taken out, so the loss the model returned
        # anyway is one of the predictions (one value per batch), beside the logits
        assert ours_prediction.label_ids is None and ref_prediction.label_ids is None
        assert isinstance(ours_prediction.predictions, tuple) and len(ours_prediction.predictions) == 2
        for mine, ref in zip(ours_prediction.predictions, ref_prediction.predictions, strict=True):
            np.testing.assert_allclose(mine, ref, atol=1e-6)
        assert ours_prediction.predictions[0].shape == (2,) and ours_prediction.predictions[1].shape == (6, 3)
        assert set(ours_prediction.metrics) & {"test_loss", "test_labels"} == set()
    else:
        np.testing.assert_allclose(ours_prediction.predictions, ref_prediction.predictions, atol=1e-6)
        np.testing.assert_array_equal(ours_prediction.label_ids, ref_prediction.label_ids)
        assert ours_prediction.metrics["test_labels"] == ref_prediction.metrics["test_labels"] > 0
        assert ours_prediction.metrics["test_loss"] == pytest.approx(ref_prediction.metrics["test_loss"], abs=1e-6)
    serial, _ = _scorer_run(leanformers, tmp_path / "serial", train, held_out,
                            **{**overrides, "dataloader_num_workers": 0})
    assert [h["loss"] for h in step_logs(serial)] == [h["loss"] for h in step_logs(ours)]
