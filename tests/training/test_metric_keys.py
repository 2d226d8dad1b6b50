"""The metrics dicts that train(), evaluate() and predict() return hold the reference's keys in its order (code
that prints or tabulates them sees the same columns); timing values differ, keys do not."""

from __future__ import annotations

from .conftest import classification_data, default_args, run_trainer

# Transformers measures accelerate's model preparation; leanformers has no such step
_ACCELERATE_ONLY = "_model_preparation_time"


def _keys(metrics: dict) -> list[str]:
    return [key for key in metrics if not key.endswith(_ACCELERATE_ONLY)]


def _metric_keys(library, model_dir, folder):
    data = classification_data(8)
    trainer = run_trainer(library, model_dir, data, default_args(folder, max_steps=2, logging_steps=10),
                          compute_metrics=lambda prediction: {"zeta": 1.0, "accuracy": 0.5})
    evaluated = trainer.evaluate(data)
    tested = trainer.evaluate(data, metric_key_prefix="test")
    predicted = trainer.predict(data).metrics
    return [_keys(metrics) for metrics in (trainer.state.log_history[-1], evaluated, tested, predicted)]


def test_metric_keys_in_the_reference_order(tiny_bert_dir, tmp_path):
    ours = _metric_keys("ours", tiny_bert_dir, tmp_path / "ours")
    theirs = _metric_keys("reference", tiny_bert_dir, tmp_path / "reference")
    assert ours == theirs
    assert ours[1][:3] == ["eval_loss", "eval_zeta", "eval_accuracy"]


def _train_output_keys(library, model_dir, folder, **overrides):
    import warnings

    lib = __import__("transformers" if library == "reference" else "leanformers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lib.AutoModelForSequenceClassification.from_pretrained(model_dir)
        args = lib.TrainingArguments(**default_args(folder, max_steps=2, **overrides))
        return list(lib.Trainer(model=model, args=args, train_dataset=classification_data(8)).train().metrics)


def test_train_output_metrics_match_the_reference(tiny_bert_dir, tmp_path):
    for overrides in ({"disable_tqdm": True}, {"disable_tqdm": False}):
        ours, theirs = (_train_output_keys(library, tiny_bert_dir, tmp_path / library, **overrides)
                        for library in ("ours", "reference"))
        assert ours == theirs, overrides
