"""Longformer in the fill-mask, text-classification, token-classification (transformers 5.24) and
question-answering (transformers 4.55) pipelines, on tiny checkpoints with a RoBERTa byte-level BPE tokenizer."""

from __future__ import annotations

import pytest
import torch

import leanformers
from tests.generation.legacy_ref import run_legacy_script

from .conftest import assert_same
from .legacy_cases import CONTEXT, LONG_CONTEXT, QUESTIONS, plain
from .tiny_models import NER_LABELS, _bpe_files, _labels, _save

TEXTS = ["My name is Sylvain and I work at Hugging Face in Brooklyn.", "Paris is the capital of France.",
         "hello world"]
HEADS = {"fill-mask": ("LongformerForMaskedLM", {}),
         "text-classification": ("LongformerForSequenceClassification", _labels(["NEGATIVE", "POSITIVE"])),
         "token-classification": ("LongformerForTokenClassification", _labels(NER_LABELS)),
         "question-answering": ("LongformerForQuestionAnswering", {})}
CALLS = {"fill-mask": (["The cat sat on the <mask>.", "Paris is the <mask> of France."], {"top_k": 3}),
         "text-classification": (TEXTS, {"top_k": None, "batch_size": 2}),
         "token-classification": (TEXTS, {"aggregation_strategy": "simple", "batch_size": 2}),
         "question-answering": ([], {"question": QUESTIONS, "context": LONG_CONTEXT, "top_k": 2})}

_QA_SCRIPT = """
import json, sys, transformers
payload = json.load(open(sys.argv[1]))
pipe = transformers.pipeline("question-answering", model=payload["model"], device="cpu")
json.dump(pipe(*payload["args"], **payload["kwargs"]), open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """task -> a tiny Longformer checkpoint for it (windows [4, 8]), saved by the reference."""
    import transformers

    root = tmp_path_factory.mktemp("longformer-pipelines")
    files = _bpe_files(root / "bpe", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = transformers.RobertaTokenizer.from_pretrained(str(files))
    out = {}
    for task, (class_name, extra) in HEADS.items():
        torch.manual_seed(0)
        config = transformers.LongformerConfig(
            vocab_size=len(tokenizer), hidden_size=30, num_hidden_layers=2, num_attention_heads=3,
            intermediate_size=37, max_position_embeddings=520, initializer_range=0.2, attention_window=[4, 8],
            pad_token_id=tokenizer.pad_token_id, **extra)
        out[task] = str(_save(getattr(transformers, class_name)(config), tokenizer, root / task))
    return out


@pytest.mark.parametrize("task", ["fill-mask", "text-classification", "token-classification"])
def test_matches_reference_pipeline(folders, task):
    import transformers

    args, kwargs = CALLS[task]
    ours = leanformers.pipeline(task, model=folders[task], device="cpu")
    assert type(ours.model).__name__ == HEADS[task][0]
    assert_same(ours(args, **kwargs), transformers.pipeline(task, model=folders[task], device="cpu")(args, **kwargs))


def test_question_answering_matches_legacy_reference(folders):
    """Global attention lands on the question automatically, in both libraries."""
    args, kwargs = CALLS["question-answering"]
    pipe = leanformers.pipeline("question-answering", model=folders["question-answering"], device="cpu")
    expected = run_legacy_script(_QA_SCRIPT, {"model": folders["question-answering"], "args": args,
                                              "kwargs": kwargs})
    assert_same(plain(pipe(*args, **kwargs)), expected)
    single = pipe(question=QUESTIONS[0], context=CONTEXT)
    assert CONTEXT[single["start"]:single["end"]] == single["answer"]


def test_longformer_tokenizer_is_robertas(folders, tmp_path):
    """A checkpoint whose tokenizer_config.json names LongformerTokenizer loads RoBERTa's tokenizer."""
    import json
    import shutil

    import transformers

    assert leanformers.LongformerTokenizerFast is leanformers.LongformerTokenizer is leanformers.RobertaTokenizerFast
    shutil.copytree(folders["fill-mask"], tmp_path, dirs_exist_ok=True)
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "tokenizer_class": "LongformerTokenizer"}))
    ours = leanformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(ours) is leanformers.RobertaTokenizerFast
    theirs = transformers.AutoTokenizer.from_pretrained(folders["fill-mask"])
    assert ours(TEXTS, padding=True)["input_ids"] == theirs(TEXTS, padding=True)["input_ids"]
