"""token-classification (ner) pipeline throughput: 2,000 inputs of very mixed length (5 to 200 words, log-uniform),
batch_size 32, on a bert-base-sized token classifier with 9 labels; per-token labels (aggregation none)."""

from __future__ import annotations

from .pipeline_text_classification import cases, checkpoint, run  # noqa: F401 - `cases` is this workload's too

NAME = "pipeline_token_classification"
METRIC = ("inputs_per_s", "higher")
TASK = "token-classification"
HEAD = "BertForTokenClassification"
CONFIG = {"num_labels": 9}


def prepare(quick: bool) -> None:
    checkpoint(HEAD, CONFIG)


def measure(lib: str, case: dict, quick: bool) -> dict:
    return run(lib, case, quick, TASK, HEAD, CONFIG, {"ignore_labels": []})
