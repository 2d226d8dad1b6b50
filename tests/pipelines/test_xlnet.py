"""XLNet in the text-generation pipeline (with transformers 4.x's long prefix, against 4.55.4), and in the
text-classification, token-classification (transformers 5.24) and question-answering (4.55.4) pipelines, on tiny
checkpoints with a SentencePiece (Unigram) tokenizer."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import leanformers
from conftest import fixture_path
from leanformers.pipelines.text_generation import XL_PREFIX
from tests.generation.legacy_ref import run_legacy_script

from .conftest import assert_same
from .legacy_cases import CONTEXT, QUESTIONS, plain
from .tiny_models import NER_LABELS, _labels

TEXTS = ["My name is Sylvain and I work at Hugging Face in Brooklyn.", "Paris is the capital of France.",
         "hello world"]
PROMPTS = ["Hello, my dog is", "The man"]
GENERATE = {"max_new_tokens": 8, "do_sample": False}
HEADS = {"text-generation": ("XLNetLMHeadModel", {"initializer_range": 0.5}),
         "text-classification": ("XLNetForSequenceClassification", _labels(["NEGATIVE", "POSITIVE"])),
         "token-classification": ("XLNetForTokenClassification", _labels(NER_LABELS)),
         "question-answering": ("XLNetForQuestionAnsweringSimple", {})}
CALLS = {"text-classification": (TEXTS, {"top_k": None, "batch_size": 2}),
         "token-classification": (TEXTS, {"aggregation_strategy": "simple", "batch_size": 2})}

# A tokenizer difference of transformers 4.55 (not of its pipelines) is set aside: its fast XLNet tokenizer splits the
# prefix's inline special tokens differently from its SentencePiece one and from transformers 5 (generation runs with
# the SentencePiece one). Its token type ids are kept: leanformers returns them too (XLNet embeds segments).
_LEGACY_SCRIPT = """
import json, sys, transformers
payload = json.load(open(sys.argv[1]))
lm = payload["text-generation"]
generate = transformers.pipeline("text-generation", model=lm, device="cpu",
                                 tokenizer=transformers.AutoTokenizer.from_pretrained(lm, use_fast=False))
qa_model = payload["question-answering"]
qa = transformers.pipeline("question-answering", model=qa_model, device="cpu")
result = {"text": [generate(p, **payload["generate"]) for p in payload["prompts"]],
          "tokens": generate(payload["prompts"][0], return_tensors=True, **payload["generate"]),
          "qa": qa(question=payload["questions"], context=payload["context"], top_k=2)}
json.dump(result, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """task -> a tiny XLNet checkpoint for it (odd sizes), saved by the reference with a SentencePiece model."""
    import transformers

    root = tmp_path_factory.mktemp("xlnet-pipelines")
    out = {}
    for task, (class_name, extra) in HEADS.items():
        folder = root / task
        folder.mkdir()
        shutil.copy(fixture_path("sentencepiece", "test", "botchan_en_unigram_1000.model"), folder / "spiece.model")
        # the extra tokens 4.55 adds by default, so that both versions have the same vocabulary
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "XLNetTokenizer", "additional_special_tokens": ["<eop>", "<eod>"]}))
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        torch.manual_seed(0)
        config = transformers.XLNetConfig(
            vocab_size=len(tokenizer), d_model=30, n_layer=2, n_head=3, d_inner=37, mem_len=None,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, **{"initializer_range": 0.2, **extra})
        getattr(transformers, class_name)(config).eval().save_pretrained(folder)
        out[task] = str(folder)
    return out


@pytest.fixture(scope="module")
def legacy(folders):
    return run_legacy_script(_LEGACY_SCRIPT, {**folders, "prompts": PROMPTS, "generate": GENERATE,
                                              "questions": QUESTIONS[:2], "context": CONTEXT})


def test_text_generation_matches_transformers_4(folders, legacy):
    pipe = leanformers.pipeline("text-generation", model=folders["text-generation"], device="cpu")
    assert type(pipe.model).__name__ == "XLNetLMHeadModel" and pipe.prefix == XL_PREFIX
    assert [pipe(p, **GENERATE) for p in PROMPTS] == legacy["text"]
    tokens = pipe(PROMPTS[0], return_tensors=True, **GENERATE)
    assert tokens == legacy["tokens"]
    prefix = pipe.tokenizer(XL_PREFIX, add_special_tokens=False)["input_ids"]
    assert tokens[0]["generated_token_ids"][:len(prefix)] == prefix  # the prompt followed the prefix
    assert pipe(PROMPTS[0], prefix="", **GENERATE)[0]["generated_text"].startswith(PROMPTS[0])


@pytest.mark.parametrize("task", sorted(CALLS))
def test_classification_pipelines_match_reference(folders, task):
    import transformers

    args, kwargs = CALLS[task]
    ours = leanformers.pipeline(task, model=folders[task], device="cpu")
    assert type(ours.model).__name__ == HEADS[task][0]
    # transformers 5's tokenizer asked for the token type ids that leanformers' returns by default (as 4.x did)
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        folders[task], model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    reference = transformers.pipeline(task, model=folders[task], tokenizer=tokenizer, device="cpu")
    assert_same(ours(args, **kwargs), reference(args, **kwargs))


def test_question_answering_matches_legacy_reference(folders, legacy):
    pipe = leanformers.pipeline("question-answering", model=folders["question-answering"], device="cpu")
    assert type(pipe.model).__name__ == "XLNetForQuestionAnsweringSimple"
    got = plain(pipe(question=QUESTIONS[:2], context=CONTEXT, top_k=2))
    assert_same(got, [[_without_leading_space(answer) for answer in answers] for answers in legacy["qa"]])
    assert all(CONTEXT[a["start"]:a["end"]] == a["answer"] for answers in got for a in answers)


def _without_leading_space(answer: dict) -> dict:
    """4.55's fast XLNet tokenizer counts the space before a word into its offsets; transformers 5's does not."""
    text = answer["answer"].lstrip()
    return {**answer, "start": answer["end"] - len(text), "answer": text}
