"""The GLUE helpers of the classic examples: InputExample / InputFeatures, one processor per GLUE task (reading the
tab-separated files of the GLUE distribution), conversion of examples to padded features, and the task metrics.

Transformers 5 removed them; code written for 4.x still calls them. Each processor is described by a small table of
file names and column positions instead of a class body per task. Metrics are computed with numpy (no scikit-learn).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class InputExample:
    """One example for sequence (pair) classification: its id, one or two texts, and its label (None for test)."""

    guid: str
    text_a: str
    text_b: str | None = None
    label: str | None = None

    def to_json_string(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"


@dataclass(frozen=True)
class InputFeatures:
    """The model inputs of one example, under the names the models take, and its label (index or float)."""

    input_ids: list[int]
    attention_mask: list[int] | None = None
    token_type_ids: list[int] | None = None
    label: int | float | None = None

    def to_json_string(self) -> str:
        return json.dumps(dataclasses.asdict(self)) + "\n"


@dataclass(frozen=True)
class Columns:
    """Where a row of one split keeps its texts and label. `guid_column` None numbers the rows instead: by their
    line number in the file, plus `guid_offset`."""

    text_a: int
    text_b: int | None = None
    label: int | None = None
    guid_column: int | None = 0
    has_header: bool = True
    guid_offset: int = 0


@dataclass(frozen=True)
class GlueTask:
    labels: tuple
    labelled: Columns                       # train and dev rows
    test: Columns                           # test rows (no label)
    dev_file: str = "dev.tsv"
    test_file: str = "test.tsv"
    skip_short_rows: bool = False           # QQP's files hold a few broken rows, which are dropped


_PAIR = GlueTask(("entailment", "not_entailment"), Columns(1, 2, -1), Columns(1, 2))
_MNLI_LABELS = ("contradiction", "entailment", "neutral")
GLUE_TASKS = {
    "cola": GlueTask(("0", "1"), Columns(3, label=1, guid_column=None, has_header=False),
                     Columns(1, guid_column=None, guid_offset=-1)),
    "mnli": GlueTask(_MNLI_LABELS, Columns(8, 9, -1), Columns(8, 9), "dev_matched.tsv", "test_matched.tsv"),
    "mnli-mm": GlueTask(_MNLI_LABELS, Columns(8, 9, -1), Columns(8, 9), "dev_mismatched.tsv",
                        "test_mismatched.tsv"),
    "mrpc": GlueTask(("0", "1"), Columns(3, 4, 0, guid_column=None), Columns(3, 4, guid_column=None)),
    "sst-2": GlueTask(("0", "1"), Columns(0, label=1, guid_column=None), Columns(1, guid_column=None)),
    "sts-b": GlueTask((None,), Columns(7, 8, -1), Columns(7, 8)),
    "qqp": GlueTask(("0", "1"), Columns(3, 4, 5), Columns(1, 2), skip_short_rows=True),
    "qnli": _PAIR,
    "rte": _PAIR,
    "wnli": GlueTask(("0", "1"), Columns(1, 2, -1), Columns(1, 2)),
}


class DataProcessor:
    """Reads the train / dev / test files of one GLUE task from a folder into InputExamples."""

    task: GlueTask

    def get_train_examples(self, data_dir):
        return self._examples(data_dir, "train.tsv", "train")

    def get_dev_examples(self, data_dir):
        return self._examples(data_dir, self.task.dev_file, self.task.dev_file.removesuffix(".tsv"))

    def get_test_examples(self, data_dir):
        return self._examples(data_dir, self.task.test_file, self.task.test_file.removesuffix(".tsv"))

    def get_labels(self) -> list:
        return list(self.task.labels)

    @classmethod
    def _read_tsv(cls, input_file, quotechar=None) -> list[list[str]]:
        with open(input_file, encoding="utf-8-sig") as handle:
            return list(csv.reader(handle, delimiter="\t", quotechar=quotechar))

    def _examples(self, data_dir, file_name: str, set_type: str) -> list[InputExample]:
        lines = self._read_tsv(os.path.join(data_dir, file_name))
        return self._create_examples(lines, set_type)

    def _create_examples(self, lines, set_type: str) -> list[InputExample]:
        is_test = set_type.startswith("test")
        columns = self.task.test if is_test else self.task.labelled
        examples = []
        for index, line in enumerate(lines[1:] if columns.has_header else lines, start=int(columns.has_header)):
            needed = [c for c in (columns.text_a, columns.text_b, None if is_test else columns.label) if c is not None]
            if self.task.skip_short_rows and any(c >= len(line) for c in needed):
                continue
            guid = index + columns.guid_offset if columns.guid_column is None else line[columns.guid_column]
            examples.append(InputExample(
                guid=f"{set_type}-{guid}", text_a=line[columns.text_a],
                text_b=None if columns.text_b is None else line[columns.text_b],
                label=None if is_test else line[columns.label]))
        return examples


def _processor_class(name: str, task: GlueTask) -> type:
    class_name = "".join(part.capitalize() for part in name.replace("-mm", "-mismatched").split("-")) + "Processor"
    return type(class_name, (DataProcessor,), {"task": task, "__doc__": f"Processor for GLUE {name}."})


glue_processors = {name: _processor_class(name, task) for name, task in GLUE_TASKS.items()}
glue_tasks_num_labels = {name: len(task.labels) for name, task in GLUE_TASKS.items() if name != "mnli-mm"}
glue_output_modes = {name: "regression" if name == "sts-b" else "classification" for name in GLUE_TASKS}


def glue_convert_examples_to_features(examples, tokenizer, max_length=None, task=None, label_list=None,
                                      output_mode=None) -> list[InputFeatures]:
    """Tokenizes (text_a, text_b) pairs padded to `max_length` (default: the tokenizer's limit) and maps labels
    through `label_list` (classification) or to floats (regression); the task fills in what is not given."""
    if not isinstance(examples, (list, tuple)):
        raise TypeError(f"glue_convert_examples_to_features takes a list of InputExample, got "
                        f"{type(examples).__name__}; TensorFlow datasets are not supported.")
    max_length = tokenizer.model_max_length if max_length is None else max_length
    if task is not None:
        label_list = glue_processors[task]().get_labels() if label_list is None else label_list
        output_mode = glue_output_modes[task] if output_mode is None else output_mode
    label_map = {label: index for index, label in enumerate(label_list or [])}

    def label_of(example):
        if example.label is None:
            return None
        if output_mode == "classification":
            return label_map[example.label]
        if output_mode == "regression":
            return float(example.label)
        raise KeyError(output_mode)

    # one call per example: a batch that mixes single sentences (text_b None) and pairs is valid GLUE data
    features = []
    for example in examples:
        encoded = tokenizer(example.text_a, example.text_b, max_length=max_length, padding="max_length",
                            truncation=True)
        features.append(InputFeatures(**dict(encoded), label=label_of(example)))
    return features


# ---------------------------------------------------------------------------------------------------- metrics
def simple_accuracy(preds, labels) -> float:
    return float((np.asarray(preds) == np.asarray(labels)).mean())


def _binary_f1(preds, labels) -> float:
    preds, labels = np.asarray(preds) == 1, np.asarray(labels) == 1
    true_positive = float(np.sum(preds & labels))
    denominator = float(np.sum(preds) + np.sum(labels))
    return 2 * true_positive / denominator if denominator else 0.0


def acc_and_f1(preds, labels) -> dict:
    acc, f1 = simple_accuracy(preds, labels), _binary_f1(preds, labels)
    return {"acc": acc, "f1": f1, "acc_and_f1": (acc + f1) / 2}


def _matthews(preds, labels) -> float:
    """Matthews correlation over any number of classes (the multi-class form of the phi coefficient)."""
    classes = np.union1d(preds, labels)
    confusion = np.zeros((len(classes), len(classes)))
    np.add.at(confusion, (np.searchsorted(classes, labels), np.searchsorted(classes, preds)), 1)
    true_totals, pred_totals = confusion.sum(axis=1), confusion.sum(axis=0)
    total, correct = confusion.sum(), np.trace(confusion)
    numerator = correct * total - true_totals @ pred_totals
    denominator = np.sqrt((total ** 2 - pred_totals @ pred_totals) * (total ** 2 - true_totals @ true_totals))
    return float(numerator / denominator) if denominator else 0.0


def _ranks(values) -> np.ndarray:
    """1-based ranks; tied values share the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def pearson_and_spearman(preds, labels) -> dict:
    pearson = float(np.corrcoef(np.asarray(preds, np.float64), np.asarray(labels, np.float64))[0, 1])
    spearman = float(np.corrcoef(_ranks(preds), _ranks(labels))[0, 1])
    return {"pearson": pearson, "spearmanr": spearman, "corr": (pearson + spearman) / 2}


def glue_compute_metrics(task_name: str, preds, labels) -> dict:
    """The GLUE metric(s) of a task: MCC for CoLA, accuracy + F1 for MRPC / QQP, correlations for STS-B,
    accuracy otherwise (under `mnli/acc` / `mnli-mm/acc` for MNLI)."""
    if len(preds) != len(labels):
        raise ValueError(f"Predictions and labels have mismatched lengths {len(preds)} and {len(labels)}")
    if task_name == "cola":
        return {"mcc": _matthews(preds, labels)}
    if task_name in ("mrpc", "qqp"):
        return acc_and_f1(preds, labels)
    if task_name == "sts-b":
        return pearson_and_spearman(preds, labels)
    if task_name in ("mnli", "mnli-mm"):
        return {f"{task_name}/acc": simple_accuracy(preds, labels)}
    if task_name in ("sst-2", "qnli", "rte", "wnli", "hans"):
        return {"acc": simple_accuracy(preds, labels)}
    raise KeyError(task_name)
