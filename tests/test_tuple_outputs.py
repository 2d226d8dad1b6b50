"""Outputs as tuples, as code written for Transformers 4.x reads them: fields that are None are left out, and index,
slice, unpacking and to_tuple() agree; `model(ids, output_hidden_states=True, output_attentions=True)[-2:]` is
(all hidden states, all attentions) for every encoder head, and no model fills a field with an empty tuple."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest
import torch

import leanformers
from leanformers.auto import REGISTRY, module_path
from leanformers.outputs import ModelOutput


def _output_classes() -> list[type]:
    modules = {"leanformers.outputs", "leanformers.generation.outputs"}
    modules |= {f"leanformers.{module_path(arch)}" for arch in REGISTRY.values()}
    found = set()
    for name in modules:
        module = importlib.import_module(name)
        found |= {obj for obj in vars(module).values()
                  if inspect.isclass(obj) and issubclass(obj, ModelOutput) and obj is not ModelOutput}
    return sorted(found, key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize("cls", _output_classes(), ids=lambda cls: cls.__qualname__)
def test_every_output_class_skips_none_and_agrees_across_access_forms(cls):
    names = [field.name for field in dataclasses.fields(cls)]
    for skip in range(len(names) + 1):  # every field set but one (and all set), each value a distinct object
        values = {name: object() for index, name in enumerate(names) if index != skip}
        out = cls(**values)
        expected = tuple(values[name] for name in names if name in values)
        assert out.to_tuple() == expected and tuple(out) == tuple(out.keys())
        assert tuple(out[i] for i in range(len(expected))) == expected
        assert out[-2:] == expected[-2:] and out[1:] == expected[1:] and out[::-1] == expected[::-1]
        assert list(out.values()) == list(expected)
        if expected:
            first, *rest = out.to_tuple()
            assert first is out[0] is getattr(out, next(iter(out.keys())))


TINY_BERT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=64)
TINY_GPT = dict(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64)
TINY_BART = dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64)
CONFIGS = {
    "bert": TINY_BERT, "roberta": TINY_BERT, "xlm-roberta": TINY_BERT, "camembert": TINY_BERT,
    "electra": dict(TINY_BERT, embedding_size=16), "albert": dict(TINY_BERT, embedding_size=16),
    "distilbert": dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37),
    "gpt2": TINY_GPT, "openai-gpt": TINY_GPT, "ctrl": dict(TINY_GPT, dff=37),
    "llama": dict(TINY_BERT, num_key_value_heads=2), "mistral": dict(TINY_BERT, num_key_value_heads=2),
    "qwen2": dict(TINY_BERT, num_key_value_heads=2),
    "bart": TINY_BART, "mbart": TINY_BART, "marian": TINY_BART, "pegasus": TINY_BART,
    "t5": dict(vocab_size=99, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, decoder_start_token_id=0),
}
SEQ2SEQ_WITH_DECODER_INPUTS = {"BartModel", "BartForConditionalGeneration", "MBartModel",
                               "MBartForConditionalGeneration", "MarianModel", "MarianMTModel", "PegasusModel",
                               "PegasusForConditionalGeneration", "T5Model", "T5ForConditionalGeneration"}
ENCODER_ONLY = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "albert", "distilbert"}


def _heads(model_type):
    return sorted(set(REGISTRY[model_type].heads.values()))


def _inputs(model_type, head: str) -> dict:
    ids = torch.tensor([[5, 6, 7, 8, 2], [9, 8, 7, 6, 2]])  # ending in <eos>, which seq2seq classifiers need
    inputs = {"input_ids": ids.unsqueeze(1).expand(2, 3, 5) if "MultipleChoice" in head else ids}
    if head in SEQ2SEQ_WITH_DECODER_INPUTS:
        inputs["decoder_input_ids"] = ids[:, :3]
    return inputs


@pytest.mark.parametrize("model_type", sorted(CONFIGS))
def test_models_tuple_form_matches_the_output_object(model_type):
    config_class = leanformers.AutoConfig.config_class(model_type)
    for head in _heads(model_type):
        torch.manual_seed(0)
        config = config_class(**CONFIGS[model_type], pad_token_id=0, eos_token_id=2, num_labels=2)
        model = getattr(leanformers, head)(config).eval()
        inputs = _inputs(model_type, head)
        with torch.no_grad():
            out = model(**inputs, output_hidden_states=True, output_attentions=True)
            as_tuple = model(**inputs, output_hidden_states=True, output_attentions=True, return_dict=False)
        assert isinstance(as_tuple, tuple) and len(as_tuple) == len(out.to_tuple()), head
        for ours, expected in zip(as_tuple, out.to_tuple()):
            assert type(ours) is type(expected), head
        empty = [key for key, value in out.items() if isinstance(value, (tuple, list)) and len(value) == 0]
        assert empty == [], f"{head} fills {empty} with an empty tuple"
        if model_type in ENCODER_ONLY:
            hidden_states, attentions = out[-2:]
            assert hidden_states is out.hidden_states and attentions is out.attentions, head
            assert len(hidden_states) == 3 and len(attentions) == 2, head
