"""The rest of the Trainer API: custom optimisers, model_init, several eval sets, predictions without labels."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import leanformers
from leanformers import Trainer, TrainingArguments

from .conftest import classification_data, default_args, step_logs


def _model(folder):
    return leanformers.AutoModelForSequenceClassification.from_pretrained(folder)


def test_custom_optimizers(tiny_bert_dir, tmp_path):
    model = _model(tiny_bert_dir)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    trainer = Trainer(model=model, args=TrainingArguments(**default_args(tmp_path, max_steps=3)),
                      train_dataset=classification_data(12), optimizers=(optimizer, scheduler))
    trainer.train()
    assert trainer.optimizer is optimizer
    assert [h["learning_rate"] for h in step_logs(trainer)] == pytest.approx([0.05, 0.025, 0.05 / 3])

    by_class = Trainer(model=_model(tiny_bert_dir), train_dataset=classification_data(12),
                       args=TrainingArguments(**default_args(tmp_path, max_steps=1, weight_decay=0.1)),
                       optimizer_cls_and_kwargs=(torch.optim.SGD, {"lr": 0.01}))
    by_class.train()
    assert isinstance(by_class.optimizer, torch.optim.SGD)
    assert [g["weight_decay"] for g in by_class.optimizer.param_groups] == [0.1, 0.0]


def test_model_init_rebuilds_the_model(tiny_bert_dir, tmp_path):
    calls = []

    def build():
        calls.append(1)
        return _model(tiny_bert_dir)

    trainer = Trainer(model_init=build, args=TrainingArguments(**default_args(tmp_path, max_steps=2)),
                      train_dataset=classification_data(8))
    trainer.train()
    assert len(calls) == 2 and trainer.state.global_step == 2


def test_several_eval_sets_and_unlabelled_prediction(tiny_bert_dir, tmp_path):
    trainer = Trainer(model=_model(tiny_bert_dir), args=TrainingArguments(**default_args(tmp_path)),
                      eval_dataset={"a": classification_data(5, seed=2), "b": classification_data(3, seed=3)})
    metrics = trainer.evaluate()
    assert {"eval_a_loss", "eval_b_loss"} <= set(metrics)
    trainer.save_metrics("eval", metrics)
    import json

    assert json.loads((tmp_path / "all_results.json").read_text())["eval_a_loss"] == metrics["eval_a_loss"]
    unlabelled = [{k: v for k, v in row.items() if k != "labels"} for row in classification_data(7, seed=4)]
    output = trainer.predict(unlabelled)
    assert output.label_ids is None and output.predictions.shape == (7, 3)
    assert not any(key.endswith("_loss") for key in output.metrics)
    model = trainer.model.eval()
    batch = leanformers.default_data_collator(unlabelled)
    with torch.no_grad():
        np.testing.assert_allclose(output.predictions, model(**batch).logits.numpy(), atol=1e-5)


def test_save_model_writes_a_loadable_folder_with_tokenizer(tiny_bert_dir, minilm_dir, tmp_path):
    tokenizer = leanformers.AutoTokenizer.from_pretrained(minilm_dir)
    trainer = Trainer(model=_model(tiny_bert_dir), args=TrainingArguments(**default_args(tmp_path)),
                      processing_class=tokenizer)
    assert isinstance(trainer.data_collator, leanformers.DataCollatorWithPadding)
    trainer.save_model(str(tmp_path / "saved"))
    files = set(os.listdir(tmp_path / "saved"))
    assert {"config.json", "model.safetensors", "tokenizer.json", "training_args.bin"} <= files
    reloaded = leanformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
