"""BERT parity: every head against the reference on tiny random checkpoints (and head_mask against 4.55.4)."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers.models import bert_heads as bert

from .harness import TINY, assert_outputs_close, random_inputs, save_reference_model
from .legacy import legacy_forward

HEADS = {  # class name -> (Auto class, config overrides)
    "BertModel": ("AutoModel", {}),
    "BertForPreTraining": ("AutoModelForPreTraining", {}),
    "BertForMaskedLM": ("AutoModelForMaskedLM", {}),
    "BertLMHeadModel": ("AutoModelForCausalLM", {"is_decoder": True}),
    "BertForNextSentencePrediction": ("AutoModelForNextSentencePrediction", {}),
    "BertForSequenceClassification": ("AutoModelForSequenceClassification", {"num_labels": 3}),
    "BertForMultipleChoice": ("AutoModelForMultipleChoice", {}),
    "BertForTokenClassification": ("AutoModelForTokenClassification", {"num_labels": 5}),
    "BertForQuestionAnswering": ("AutoModelForQuestionAnswering", {}),
}
FLAGS = dict(output_attentions=True, output_hidden_states=True)
BATCH, SEQ = 2, 7


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (folder, reference model with eager attention) built once per module."""
    import transformers

    cache = {}

    def get(name, **extra):
        key = (name, tuple(sorted(extra.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp(name)
            save_reference_model(name, "BertConfig", folder, **TINY, **HEADS[name][1], **extra)
            reference = getattr(transformers, name).from_pretrained(folder, attn_implementation="eager").eval()
            cache[key] = folder, reference
        return cache[key]
    return get


def head_inputs(name: str) -> dict:
    """A right-padded batch (padding holds the pad token); (batch, 2 choices, seq) for multiple choice."""
    choices = 2 if name == "BertForMultipleChoice" else 1
    inputs = random_inputs(batch=BATCH * choices, seq=SEQ)
    inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, 0)
    if name == "BertLMHeadModel":
        inputs["use_cache"] = False  # the reference would return a cache; ours has none
    return {k: v.view(BATCH, choices, SEQ) for k, v in inputs.items()} if choices > 1 else inputs


def head_labels(name: str) -> dict:
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, TINY["vocab_size"], (BATCH, SEQ), generator=g)
    tokens[:, 0] = -100
    pair = torch.randint(0, 2, (BATCH,), generator=g)
    return {
        "BertModel": {},
        "BertForPreTraining": {"labels": tokens, "next_sentence_label": pair},
        "BertForMaskedLM": {"labels": tokens}, "BertLMHeadModel": {"labels": tokens},
        "BertForNextSentencePrediction": {"labels": pair}, "BertForMultipleChoice": {"labels": pair},
        "BertForSequenceClassification": {"labels": torch.randint(0, 3, (BATCH,), generator=g)},
        "BertForTokenClassification": {"labels": torch.randint(0, 5, (BATCH, SEQ), generator=g)},
        "BertForQuestionAnswering": {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([3, 4])},
    }[name]


def ours_and_auto(name: str, folder):
    ours = getattr(bert, name).from_pretrained(folder)
    by_auto = getattr(leanformers, HEADS[name][0]).from_pretrained(folder)
    assert type(ours) is type(by_auto) is getattr(leanformers, name)
    return ours, by_auto


@pytest.mark.parametrize("name", HEADS)
@torch.no_grad()
def test_head_matches_reference(saved, name):
    """Every output (loss, logits, hidden states, attentions) as object and tuple, eager and SDPA paths."""
    folder, reference = saved(name)
    inputs, labels = head_inputs(name), head_labels(name)
    expected = reference(**inputs, **labels, **FLAGS)
    assert ("loss" in expected) == bool(labels)
    for model in ours_and_auto(name, folder):
        got = model(**inputs, **labels, **FLAGS)
        assert type(got).__name__ == type(expected).__name__
        assert_outputs_close(got, expected)
        as_tuple = model(**inputs, **labels, **FLAGS, return_dict=False)
        assert isinstance(as_tuple, tuple)
        assert_outputs_close(dict(enumerate(as_tuple)), dict(enumerate(expected.to_tuple())))
        assert_outputs_close(model(**inputs), reference(**inputs))  # SDPA: no weights asked for


@pytest.mark.parametrize("name", ["BertModel", "BertForMaskedLM", "BertForSequenceClassification"])
@torch.no_grad()
def test_inputs_embeds_position_ids_and_defaults(saved, name):
    folder, reference = saved(name)
    ours = getattr(bert, name).from_pretrained(folder)
    inputs = head_inputs(name)
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    positions = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    for kwargs in ({"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]},
                   {**inputs, "position_ids": positions},
                   {"input_ids": inputs["input_ids"]}):  # token types default to zeros, no mask
        assert_outputs_close(ours(**kwargs, **FLAGS), reference(**kwargs, **FLAGS))


def test_output_flags_from_config(saved):
    folder, reference = saved("BertModel")
    ours = leanformers.AutoModel.from_pretrained(folder, output_hidden_states=True, output_attentions=True)
    out = ours(**head_inputs("BertModel"))
    assert len(out.hidden_states) == TINY["num_hidden_layers"] + 1 and len(out.attentions) == 2
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        ours()


@torch.no_grad()
def test_head_mask_matches_legacy_reference(saved):
    """head_mask (dropped by transformers 5) multiplies each head's attention probabilities like 4.x did."""
    layer_mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    cases = [("BertModel", layer_mask), ("BertModel", torch.tensor([1.0, 1.0, 0.0, 1.0])),
             ("BertForSequenceClassification", layer_mask), ("BertForMaskedLM", layer_mask),
             ("BertLMHeadModel", layer_mask), ("BertForMultipleChoice", layer_mask)]
    jobs, ours = [], []
    for name, head_mask in cases:
        folder, _ = saved(name)
        inputs = {**head_inputs(name), **head_labels(name), "head_mask": head_mask, **FLAGS}
        jobs.append({"class_name": name, "folder": folder, "inputs": inputs})
        model = getattr(bert, name).from_pretrained(folder)
        ours.append(model(**inputs))
        unmasked = model(**{k: v for k, v in inputs.items() if k != "head_mask"})
        assert not torch.allclose(ours[-1].hidden_states[-1], unmasked.hidden_states[-1])  # the mask is not silently ignored
    for got, expected in zip(ours, legacy_forward(jobs)):
        expected.pop("cross_attentions", None)  # 4.x leaves it None without cross-attention layers
        got = {k: v for k, v in got.items() if k != "cross_attentions"}
        assert_outputs_close(got, expected)


@torch.no_grad()
def test_cross_attention_decoder(saved):
    folder, reference = saved("BertLMHeadModel", add_cross_attention=True)
    ours = bert.BertLMHeadModel.from_pretrained(folder)
    g = torch.Generator().manual_seed(2)
    encoder_mask = torch.ones(BATCH, 5, dtype=torch.long)
    encoder_mask[0, -2:] = 0
    kwargs = {**head_inputs("BertLMHeadModel"), **head_labels("BertLMHeadModel"), **FLAGS,
              "encoder_hidden_states": torch.randn(BATCH, 5, TINY["hidden_size"], generator=g),
              "encoder_attention_mask": encoder_mask, "use_cache": False}
    got, expected = ours(**kwargs), reference(**kwargs)
    assert len(got.cross_attentions) == TINY["num_hidden_layers"]
    assert_outputs_close(got, expected)


@pytest.mark.parametrize("name", HEADS)
@torch.no_grad()
def test_saved_by_us_loads_in_reference(saved, name, tmp_path):
    import transformers

    folder, _ = saved(name)
    ours = getattr(bert, name).from_pretrained(folder)
    torch.manual_seed(3)
    for param in ours.parameters():  # what is compared must have been written by us
        param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(tmp_path)
    theirs, info = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = {**head_inputs(name), **head_labels(name)}
    assert_outputs_close(ours(**inputs), theirs.eval()(**inputs))
    again = getattr(bert, name).from_pretrained(tmp_path)
    assert_outputs_close(again(**inputs), ours(**inputs), atol=0, rtol=0)


@pytest.mark.parametrize("num_labels, problem_type, dtype", [
    (1, None, torch.float32), (4, "multi_label_classification", torch.float32), (4, None, torch.float32),
    (3, None, torch.long), (3, "regression", torch.float32)])
@torch.no_grad()
def test_sequence_classification_losses(tmp_path, num_labels, problem_type, dtype):
    """Regression, multi-label and single-label losses; an unset problem_type is inferred and stored like 5.x."""
    import transformers

    kwargs = dict(TINY, num_labels=num_labels, problem_type=problem_type)
    reference = save_reference_model("BertForSequenceClassification", "BertConfig", tmp_path, **kwargs)
    ours = bert.BertForSequenceClassification.from_pretrained(tmp_path)
    g = torch.Generator().manual_seed(4)
    shape = (BATCH,) if dtype == torch.long else (BATCH, num_labels)
    labels = (torch.randint(0, num_labels, shape, generator=g) if dtype == torch.long
              else torch.rand(shape, generator=g).round() if problem_type else torch.randn(shape, generator=g))
    if num_labels == 1:
        labels = labels.view(-1)
    inputs = head_inputs("BertForSequenceClassification")
    assert_outputs_close(ours(**inputs, labels=labels), reference(**inputs, labels=labels))
    assert ours.config.problem_type == reference.config.problem_type is not None
    assert isinstance(reference, transformers.BertForSequenceClassification)
