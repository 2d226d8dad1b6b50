"""DistilBERT parity: every head against the reference on tiny random checkpoints (head_mask against 4.55.4)."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers.models import distilbert

from .harness import assert_outputs_close, random_inputs, save_reference_model
from .legacy import legacy_forward

TINY = dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64)
HEADS = {  # class name -> Auto class
    "DistilBertModel": "AutoModel",
    "DistilBertForMaskedLM": "AutoModelForMaskedLM",
    "DistilBertForSequenceClassification": "AutoModelForSequenceClassification",
    "DistilBertForMultipleChoice": "AutoModelForMultipleChoice",
    "DistilBertForTokenClassification": "AutoModelForTokenClassification",
    "DistilBertForQuestionAnswering": "AutoModelForQuestionAnswering",
}
FLAGS = dict(output_attentions=True, output_hidden_states=True)
BATCH, SEQ = 2, 7


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(name, config overrides) -> (folder, reference model with eager attention), built once per module."""
    import transformers

    cache = {}

    def get(name, **extra):
        key = (name, tuple(sorted(extra.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp(name)
            save_reference_model(name, "DistilBertConfig", folder, **TINY, **extra)
            reference = getattr(transformers, name).from_pretrained(folder, attn_implementation="eager").eval()
            cache[key] = folder, reference
        return cache[key]
    return get


def head_inputs(name: str) -> dict:
    choices = 2 if name.endswith("MultipleChoice") else 1
    inputs = random_inputs(batch=BATCH * choices, seq=SEQ)
    inputs.pop("token_type_ids")  # DistilBERT has no token types
    inputs["input_ids"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, 0)
    return {k: v.view(BATCH, choices, SEQ) for k, v in inputs.items()} if choices > 1 else inputs


def head_labels(name: str) -> dict:
    g = torch.Generator().manual_seed(1)
    if name.endswith("MaskedLM"):
        tokens = torch.randint(0, TINY["vocab_size"], (BATCH, SEQ), generator=g)
        tokens[:, 0] = -100
        return {"labels": tokens}
    if name.endswith(("SequenceClassification", "MultipleChoice")):
        return {"labels": torch.randint(0, 2, (BATCH,), generator=g)}
    if name.endswith("TokenClassification"):
        return {"labels": torch.randint(0, 2, (BATCH, SEQ), generator=g)}
    if name.endswith("QuestionAnswering"):
        return {"start_positions": torch.tensor([1, 9]), "end_positions": torch.tensor([3, 4])}
    return {}


@pytest.mark.parametrize("name", HEADS)
@torch.no_grad()
def test_head_matches_reference(saved, name):
    folder, reference = saved(name)
    ours = getattr(distilbert, name).from_pretrained(folder)
    by_auto = getattr(leanformers, HEADS[name]).from_pretrained(folder)
    assert type(by_auto) is type(ours)
    inputs, labels = head_inputs(name), head_labels(name)
    expected = reference(**inputs, **labels, **FLAGS)
    for model in (ours, by_auto):
        got = model(**inputs, **labels, **FLAGS)
        assert type(got).__name__ == type(expected).__name__
        assert_outputs_close(got, expected)
        as_tuple = model(**inputs, **labels, **FLAGS, return_dict=False)
        assert isinstance(as_tuple, tuple)
        assert_outputs_close(dict(enumerate(as_tuple)), dict(enumerate(expected.to_tuple())))
        assert_outputs_close(model(**inputs), reference(**inputs))  # SDPA: no weights asked for


@pytest.mark.parametrize("name", ["DistilBertModel", "DistilBertForMaskedLM"])
@torch.no_grad()
def test_sinusoidal_positions_inputs_embeds_and_position_ids(saved, name):
    folder, reference = saved(name, sinusoidal_pos_embds=True)
    ours = getattr(distilbert, name).from_pretrained(folder)
    assert ours.config.sinusoidal_pos_embds and ours.config.hidden_size == TINY["dim"]
    table = ours.get_position_embeddings().weight
    torch.testing.assert_close(table, reference.get_position_embeddings().weight, atol=0, rtol=0)
    torch.testing.assert_close(table, distilbert.sinusoidal_table(*table.shape), atol=1e-7, rtol=0)
    inputs = head_inputs(name)
    embeds = reference.get_input_embeddings()(inputs["input_ids"])
    positions = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    for kwargs in ({"inputs_embeds": embeds, "attention_mask": inputs["attention_mask"]},
                   {**inputs, "position_ids": positions}, {"input_ids": inputs["input_ids"]}):
        assert_outputs_close(ours(**kwargs, **FLAGS), reference(**kwargs, **FLAGS))


def test_sinusoidal_table_of_a_fresh_model_matches_reference():
    import transformers

    torch.manual_seed(0)
    reference = transformers.DistilBertModel(transformers.DistilBertConfig(**TINY, sinusoidal_pos_embds=True))
    ours = distilbert.DistilBertModel(distilbert.DistilBertConfig(**TINY, sinusoidal_pos_embds=True))
    torch.testing.assert_close(ours.get_position_embeddings().weight, reference.get_position_embeddings().weight,
                               atol=1e-7, rtol=0)


@torch.no_grad()
def test_head_mask_matches_legacy_reference(saved):
    layer_mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    cases = [("DistilBertModel", layer_mask), ("DistilBertModel", torch.tensor([0.0, 1.0, 1.0, 1.0])),
             ("DistilBertForSequenceClassification", layer_mask), ("DistilBertForMultipleChoice", layer_mask),
             ("DistilBertForMaskedLM", layer_mask)]
    jobs, ours = [], []
    for name, head_mask in cases:
        folder, _ = saved(name)
        inputs = {**head_inputs(name), **head_labels(name), "head_mask": head_mask, **FLAGS}
        jobs.append({"class_name": name, "folder": folder, "inputs": inputs})
        model = getattr(distilbert, name).from_pretrained(folder)
        ours.append(model(**inputs))
        unmasked = model(**{k: v for k, v in inputs.items() if k != "head_mask"})
        assert not torch.allclose(ours[-1].hidden_states[-1], unmasked.hidden_states[-1])
    for got, expected in zip(ours, legacy_forward(jobs)):
        assert_outputs_close(got, expected)


@pytest.mark.parametrize("name", HEADS)
@torch.no_grad()
def test_saved_by_us_loads_in_reference(saved, name, tmp_path):
    import transformers

    folder, _ = saved(name)
    ours = getattr(distilbert, name).from_pretrained(folder)
    torch.manual_seed(3)
    for param in ours.parameters():
        param.add_(0.01 * torch.randn_like(param))
    ours.save_pretrained(tmp_path)
    theirs, info = getattr(transformers, name).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    inputs = {**head_inputs(name), **head_labels(name)}
    assert_outputs_close(ours(**inputs), theirs.eval()(**inputs))


@pytest.mark.parametrize("num_labels, problem_type", [(1, None), (3, "multi_label_classification")])
@torch.no_grad()
def test_regression_and_multi_label_losses(tmp_path, num_labels, problem_type):
    reference = save_reference_model("DistilBertForSequenceClassification", "DistilBertConfig", tmp_path, **TINY,
                                     num_labels=num_labels, problem_type=problem_type)
    ours = distilbert.DistilBertForSequenceClassification.from_pretrained(tmp_path)
    g = torch.Generator().manual_seed(4)
    labels = torch.randn(BATCH, generator=g) if num_labels == 1 else torch.rand(BATCH, 3, generator=g).round()
    inputs = head_inputs("DistilBertForSequenceClassification")
    assert_outputs_close(ours(**inputs, labels=labels), reference(**inputs, labels=labels))
    assert ours.config.problem_type == reference.config.problem_type == (problem_type or "regression")


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels=2"):
        distilbert.DistilBertForQuestionAnswering(distilbert.DistilBertConfig(**TINY, num_labels=3))
