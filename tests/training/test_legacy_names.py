"""Names the classic examples use that Transformers 5 removed: the GLUE helpers (against 4.55.4) and the 4.x
AdamW (against 4.34.1, the last reference that still has it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import leanformers
from leanformers import AutoTokenizer

from tests.parity.legacy import REF434_PYTHON, run_legacy

_WIDTH = 12  # columns per row: enough for every field that any GLUE processor reads


def _write_tsv(path, rows):
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")


def _glue_folder(root, task: str, labels: list):
    """train/dev/test files with a header row and a few rows each; labels written where each task reads them."""
    folder = root / task
    folder.mkdir()
    label_columns = {"cola": 1, "mrpc": 0, "sst-2": 1, "qqp": 5}
    for split in ("train", "dev", "test", "dev_matched", "test_matched", "dev_mismatched", "test_mismatched"):
        rows = [[f"header{c}" for c in range(_WIDTH)]]
        for index in range(4):
            row = [f"{task}-{split}-{index}-{column}" for column in range(_WIDTH)]
            row[0] = str(1000 + index)
            label = str(labels[index % len(labels)] if labels[0] is not None else 0.25 * index)
            row[label_columns.get(task, _WIDTH - 1)] = label
            rows.append(row)
        if task == "qqp":
            rows.append(["7", "short"])  # a broken row, which the processor drops
        _write_tsv(folder / f"{split}.tsv", rows)
    return folder


def _our_examples(root) -> dict:
    out = {}
    for task, processor_class in leanformers.glue_processors.items():
        processor = processor_class()
        folder = _glue_folder(root, task, processor.get_labels())
        out[task] = [[(e.guid, e.text_a, e.text_b, e.label) for e in getter(str(folder))]
                     for getter in (processor.get_train_examples, processor.get_dev_examples,
                                    processor.get_test_examples)]
    return out


_LEGACY_GLUE = """
import warnings
warnings.simplefilter("ignore")
from transformers import glue_processors, glue_tasks_num_labels, glue_output_modes, glue_compute_metrics
result = {"examples": {}, "labels": {}, "metrics": []}
for task, cls in glue_processors.items():
    p = cls()
    folder = payload["root"] + "/" + task
    result["examples"][task] = [[(e.guid, e.text_a, e.text_b, e.label) for e in get(folder)]
                                for get in (p.get_train_examples, p.get_dev_examples, p.get_test_examples)]
    result["labels"][task] = p.get_labels()
result["num_labels"], result["modes"] = dict(glue_tasks_num_labels), dict(glue_output_modes)
for task, preds, labels in payload["metric_cases"]:
    result["metrics"].append({k: float(v) for k, v in glue_compute_metrics(task, preds.numpy(), labels.numpy()).items()})
"""


def _metric_cases() -> list:
    g = torch.Generator().manual_seed(3)
    cases = []
    for task in ("cola", "sst-2", "mrpc", "qqp", "mnli", "mnli-mm", "qnli", "rte", "wnli", "hans"):
        classes = 3 if task.startswith("mnli") else 2
        cases.append((task, torch.randint(0, classes, (40,), generator=g), torch.randint(0, classes, (40,),
                                                                                          generator=g)))
    scores = torch.round(torch.rand(40, generator=g, dtype=torch.float64) * 5) / 2  # ties for the ranks
    cases.append(("sts-b", scores, torch.round(scores + torch.rand(40, generator=g, dtype=torch.float64), decimals=1)))
    return cases


def test_glue_processors_tables_and_metrics_match_legacy(tmp_path):
    ours = _our_examples(tmp_path)
    cases = _metric_cases()
    theirs = run_legacy(_LEGACY_GLUE, {"root": str(tmp_path), "metric_cases": cases})
    assert ours == {task: [[tuple(e) for e in split] for split in splits]
                    for task, splits in theirs["examples"].items()}
    assert {task: cls().get_labels() for task, cls in leanformers.glue_processors.items()} == theirs["labels"]
    assert leanformers.glue_tasks_num_labels == theirs["num_labels"]
    assert leanformers.glue_output_modes == theirs["modes"]
    for (task, preds, labels), expected in zip(cases, theirs["metrics"]):
        got = leanformers.glue_compute_metrics(task, preds.numpy(), labels.numpy())
        assert list(got) == list(expected), task
        np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol=1e-12, atol=1e-12,
                                   err_msg=task)


def test_glue_metrics_errors():
    with pytest.raises(ValueError, match="mismatched lengths"):
        leanformers.glue_compute_metrics("sst-2", np.zeros(3), np.zeros(4))
    with pytest.raises(KeyError):
        leanformers.glue_compute_metrics("not-a-task", np.zeros(3), np.zeros(3))


_LEGACY_FEATURES = """
import warnings
warnings.simplefilter("ignore")
from transformers import AutoTokenizer, InputExample, glue_convert_examples_to_features
# the Python tokenizer: 4.55.4's fast one fails on single sentences (text_b None) in a batch of pairs
tok = AutoTokenizer.from_pretrained(payload["tokenizer"], use_fast=False)
examples = [InputExample(*e) for e in payload["examples"]]
result = []
for kwargs in payload["calls"]:
    result.append([f.__dict__ for f in glue_convert_examples_to_features(examples, tok, **kwargs)])
"""


def test_glue_convert_examples_to_features_matches_legacy(minilm_dir):
    examples = [("a-1", "The cat sat on the mat.", "A cat was sitting.", "1"),
                ("a-2", "Nothing here at all, really nothing whatsoever to speak of today.", None, "0"),
                ("a-3", "Stock prices fell sharply", "Markets dropped", None)]
    calls = [{"max_length": 12, "task": "mrpc"}, {"max_length": 20, "label_list": ["0", "1"],
                                                   "output_mode": "classification"},
             {"max_length": 16, "task": "sts-b"}]
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    inputs = [leanformers.InputExample(*e) for e in examples]
    sts = [leanformers.InputExample(e.guid, e.text_a, e.text_b, None if e.label is None else "0.5") for e in inputs]
    theirs = run_legacy(_LEGACY_FEATURES, {"tokenizer": str(minilm_dir), "examples": examples, "calls": calls[:2]})
    for call, expected in zip(calls[:2], theirs):
        got = leanformers.glue_convert_examples_to_features(inputs, tokenizer, **call)
        assert [vars(f) for f in got] == expected
    regression = leanformers.glue_convert_examples_to_features(sts, tokenizer, **calls[2])
    assert [f.label for f in regression] == [0.5, 0.5, None] and len(regression[0].input_ids) == 16
    with pytest.raises(TypeError, match="list of InputExample"):
        leanformers.glue_convert_examples_to_features(iter(inputs), tokenizer, task="mrpc")


_LEGACY_ADAMW = """
import warnings
warnings.simplefilter("ignore")
from transformers import AdamW
result = []
for kwargs in payload["settings"]:
    params = [p.clone().requires_grad_(True) for p in payload["params"]]
    opt = AdamW(params, **kwargs)
    for grads in payload["grads"]:
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
    result.append([p.detach() for p in params])
"""

_ADAMW_SETTINGS = [{"lr": 1e-2}, {"lr": 3e-3, "correct_bias": False, "weight_decay": 0.1},
                   {"lr": 5e-3, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.01}]


def _run_adamw(params, grads, kwargs):
    params = [p.clone().requires_grad_(True) for p in params]
    optimizer = leanformers.AdamW(params, no_deprecation_warning=True, **kwargs)
    for step_grads in grads:
        for param, grad in zip(params, step_grads):
            param.grad = grad.clone()
        optimizer.step()
    return [p.detach() for p in params]


def test_adamw_matches_transformers_4_34():
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(5, 3, generator=g), torch.randn(7, generator=g)]
    grads = [[torch.randn(5, 3, generator=g), torch.randn(7, generator=g)] for _ in range(4)]
    theirs = run_legacy(_LEGACY_ADAMW, {"settings": _ADAMW_SETTINGS, "params": params, "grads": grads},
                        python=REF434_PYTHON)
    for kwargs, expected in zip(_ADAMW_SETTINGS, theirs):
        for got, want in zip(_run_adamw(params, grads, kwargs), expected):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_adamw_warns_once_and_checks_arguments():
    from leanformers.training import adamw

    adamw._warned = False
    param = [torch.nn.Parameter(torch.zeros(2))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leanformers.AdamW(param)
        leanformers.AdamW(param)
    deprecations = [w for w in caught if issubclass(w.category, FutureWarning)]
    assert len(deprecations) == 1 and "torch.optim.AdamW" in str(deprecations[0].message)
    with pytest.raises(ValueError, match="betas\\[1\\]"):
        leanformers.AdamW(param, betas=(0.9, 1.0), no_deprecation_warning=True)
    with pytest.raises(ValueError, match="learning rate"):
        leanformers.AdamW(param, lr=-1.0, no_deprecation_warning=True)
