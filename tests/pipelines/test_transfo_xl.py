"""Transformer-XL in the text-generation pipeline (with transformers 4.x's long prefix) against the 4.34.1 pipeline,
on a tiny checkpoint whose word vocabulary 4.34.1 builds from the prefix and the prompts."""

from __future__ import annotations

import pytest

import leanformers
from leanformers.pipelines.text_generation import XL_PREFIX
from tests.parity.legacy import REF434_PYTHON, run_legacy

PROMPTS = ["Hello, my dog is", "The man"]
GENERATE = {"max_new_tokens": 8, "do_sample": False}

_REFERENCE = """
import os, warnings
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
from transformers import TransfoXLTokenizer
folder = payload["folder"]
builder = TransfoXLTokenizer(special=["<unk>", "<eos>"])
builder.count_sents([builder._tokenize(text) for text in [payload["prefix"], *payload["prompts"]]])
builder.build_vocab()
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("\\n".join(builder.idx2sym) + "\\n")
tokenizer = TransfoXLTokenizer(vocab_file=os.path.join(folder, "vocab.txt"))
tokenizer.save_pretrained(folder)
os.remove(os.path.join(folder, "vocab.pkl"))
torch.manual_seed(0)
config = transformers.TransfoXLConfig(vocab_size=len(tokenizer), cutoffs=[13, 50], d_model=30, d_embed=30, n_head=3,
                                      d_head=7, d_inner=37, div_val=2, n_layer=2, mem_len=5, clamp_len=4,
                                      init_std=0.3, eos_token_id=0)
transformers.TransfoXLLMHeadModel(config).eval().save_pretrained(folder)
pipe = transformers.pipeline("text-generation", model=folder, device="cpu")
# 4.34.1's pipeline hands generate() attention_mask=None (the tokenizer returns none), which its generate() then
# fails to extend: the corrected call leaves the missing mask out
generate = pipe.model.generate
pipe.model.generate = lambda attention_mask=None, **kwargs: generate(
    **kwargs, **({} if attention_mask is None else {"attention_mask": attention_mask}))
result = {"text": [pipe(p, **payload["generate"]) for p in payload["prompts"]],
          "tokens": pipe(payload["prompts"][0], return_tensors=True, **payload["generate"])}
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("transfo-xl-pipeline") / "model"
    payload = {"folder": str(folder), "prefix": XL_PREFIX, "prompts": PROMPTS, "generate": GENERATE}
    return str(folder), run_legacy(_REFERENCE, payload, python=REF434_PYTHON)


def test_text_generation_matches_transformers_4(reference):
    folder, expected = reference
    pipe = leanformers.pipeline("text-generation", model=folder, device="cpu")
    assert type(pipe.model).__name__ == "TransfoXLLMHeadModel" and pipe.prefix == XL_PREFIX
    assert [pipe(p, **GENERATE) for p in PROMPTS] == expected["text"]
    tokens = pipe(PROMPTS[0], return_tensors=True, **GENERATE)
    assert tokens == expected["tokens"]
    prefix = pipe.tokenizer(XL_PREFIX)["input_ids"]
    assert tokens[0]["generated_token_ids"][:len(prefix)] == prefix  # the prompt followed the prefix
    prompt = pipe.tokenizer(PROMPTS[0])["input_ids"]
    assert len(tokens[0]["generated_token_ids"]) == len(prefix) + len(prompt) + GENERATE["max_new_tokens"]
