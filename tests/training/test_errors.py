"""Bad input to the Trainer fails early with a specific exception that names the problem and the fix."""

from __future__ import annotations

import pytest

import leanformers
from leanformers import Trainer, TrainingArguments
from leanformers.errors import ConfigError, ResourceNotFoundError

from .conftest import classification_data, default_args


@pytest.fixture
def model(tiny_bert_dir):
    return leanformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)


def _trainer(model, tmp_path, train, **kwargs):
    args = kwargs.pop("args", None) or TrainingArguments(**default_args(tmp_path, max_steps=2))
    return Trainer(model=model, args=args, train_dataset=train, **kwargs)


def test_dataset_without_labels(model, tmp_path):
    import datasets

    rows = [{"input_ids": r["input_ids"], "attention_mask": r["attention_mask"], "sentiment": r["labels"]}
            for r in classification_data(8)]
    trainer = _trainer(model, tmp_path, datasets.Dataset.from_list(rows))
    with pytest.raises(ConfigError, match=r"no labels.*Dropped as unused: \['sentiment'\].*'labels'"):
        trainer.train()
    plain = _trainer(model, tmp_path, [{k: v for k, v in r.items() if k != "sentiment"} for r in rows])
    with pytest.raises(ConfigError, match="BertForSequenceClassification returned no loss"):
        plain.train()


def test_labels_outside_the_models_label_count(model, tmp_path):
    rows = classification_data(8)
    rows[5]["labels"] = 4  # the model has 3 labels
    with pytest.raises(ConfigError, match=r"Label 4 is outside the 3 labels.*num_labels"):
        _trainer(model, tmp_path, rows).train()


def test_eval_strategy_without_eval_dataset(model, tmp_path):
    args = TrainingArguments(**default_args(tmp_path, eval_strategy="steps", eval_steps=1))
    with pytest.raises(ConfigError, match="no eval_dataset was passed.*eval_strategy='no'"):
        _trainer(model, tmp_path, classification_data(8), args=args)
    trainer = _trainer(model, tmp_path, classification_data(8))
    with pytest.raises(ConfigError, match="eval_dataset"):
        trainer.evaluate()


@pytest.mark.parametrize("case", ["no such folder", "no checkpoint in output_dir", "folder without weights"])
def test_missing_checkpoint_to_resume(tiny_bert_dir, tmp_path, case):
    """Each library refuses before training with a ValueError; ours is also a ResourceNotFoundError naming the fix."""
    import transformers

    from leanformers.training import MissingCheckpointError

    message = {"no such folder": "does not exist.*checkpoint-<step>",
               "no checkpoint in output_dir": "has no checkpoint-<step> folder",
               "folder without weights": "holds no model weights"}[case]
    for name, lib in (("ours", leanformers), ("reference", transformers)):
        run = tmp_path / name
        if case == "folder without weights":
            (run / "checkpoint-3").mkdir(parents=True)
        resume = str(tmp_path / "nowhere" / "checkpoint-9") if case == "no such folder" else True
        model = lib.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
        trainer = lib.Trainer(model=model, args=lib.TrainingArguments(**default_args(run, max_steps=2)),
                              train_dataset=classification_data(8))
        with pytest.raises(ValueError) as caught:
            trainer.train(resume_from_checkpoint=resume)
        assert trainer.state.global_step == 0
        if name == "ours":
            assert isinstance(caught.value, MissingCheckpointError)
            assert isinstance(caught.value, ResourceNotFoundError)  # an OSError too, like other missing files
            assert caught.match(message)


def test_model_without_head_and_other_misuse(tiny_bert_dir, model, tmp_path):
    bare = leanformers.AutoModel.from_pretrained(tiny_bert_dir)
    with pytest.raises(ConfigError, match="AutoModelForSequenceClassification"):
        _trainer(bare, tmp_path, classification_data(8))
    with pytest.raises(ConfigError, match="model_init"):
        Trainer(args=TrainingArguments(**default_args(tmp_path)))
    fsdp = TrainingArguments(**default_args(tmp_path, fsdp="full_shard"))
    with pytest.raises(ConfigError, match="torchrun"):
        _trainer(model, tmp_path, classification_data(8), args=fsdp).train()
    with pytest.raises(ConfigError, match="No column"):
        _trainer(model, tmp_path, _text_only_dataset()).train()
    with pytest.raises(ConfigError, match="metric_for_best_model='f1'"):
        args = TrainingArguments(**default_args(tmp_path, eval_strategy="steps", eval_steps=1, max_steps=1,
                                                metric_for_best_model="f1"))
        _trainer(model, tmp_path, classification_data(8), args=args, eval_dataset=classification_data(2)).train()


def _text_only_dataset():
    import datasets

    return datasets.Dataset.from_dict({"text": ["a", "b"], "score": [1, 2]})
