"""DistilBERT parity: every head against the reference on tiny random checkpoints (head_mask against 4.55.4)."""

from __future__ import annotations

import pytest
import torch

import leanformers
from leanformers.models import distilbert

from .encoder_parity import (check_embeds_and_positions, check_head, check_head_mask_against_legacy,
                             check_problem_type, check_reload_by_reference, head_labels, reference_cache)

TINY = dict(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64)
HEADS = {  # class name -> Auto class
    "DistilBertModel": "AutoModel",
    "DistilBertForMaskedLM": "AutoModelForMaskedLM",
    "DistilBertForSequenceClassification": "AutoModelForSequenceClassification",
    "DistilBertForMultipleChoice": "AutoModelForMultipleChoice",
    "DistilBertForTokenClassification": "AutoModelForTokenClassification",
    "DistilBertForQuestionAnswering": "AutoModelForQuestionAnswering",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(name, config overrides) -> (folder, reference model with eager attention), built once per module."""
    get = reference_cache(tmp_path_factory, dict(TINY, attn_implementation="eager"))
    return lambda name, **extra: get(name, "DistilBertConfig", **extra)


@pytest.mark.parametrize("name", HEADS)
def test_head_matches_reference(saved, name):
    folder, reference = saved(name)
    check_head(getattr(distilbert, name), getattr(leanformers, HEADS[name]), folder, reference, name)


@pytest.mark.parametrize("name", ["DistilBertModel", "DistilBertForMaskedLM"])
def test_sinusoidal_positions_inputs_embeds_and_position_ids(saved, name):
    folder, reference = saved(name, sinusoidal_pos_embds=True)
    ours = getattr(distilbert, name).from_pretrained(folder)
    assert ours.config.sinusoidal_pos_embds and ours.config.hidden_size == TINY["dim"]
    table = ours.get_position_embeddings().weight
    torch.testing.assert_close(table, reference.get_position_embeddings().weight, atol=0, rtol=0)
    torch.testing.assert_close(table, distilbert.sinusoidal_table(*table.shape), atol=1e-7, rtol=0)
    positions = torch.tensor([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]])
    check_embeds_and_positions(ours, reference, positions)


def test_sinusoidal_table_of_a_fresh_model_matches_reference():
    import transformers

    torch.manual_seed(0)
    reference = transformers.DistilBertModel(transformers.DistilBertConfig(**TINY, sinusoidal_pos_embds=True))
    ours = distilbert.DistilBertModel(distilbert.DistilBertConfig(**TINY, sinusoidal_pos_embds=True))
    torch.testing.assert_close(ours.get_position_embeddings().weight, reference.get_position_embeddings().weight,
                               atol=1e-7, rtol=0)


def test_head_mask_matches_legacy_reference(saved):
    layer_mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    cases = [("DistilBertModel", layer_mask), ("DistilBertModel", torch.tensor([0.0, 1.0, 1.0, 1.0])),
             ("DistilBertForSequenceClassification", layer_mask), ("DistilBertForMultipleChoice", layer_mask),
             ("DistilBertForMaskedLM", layer_mask)]
    check_head_mask_against_legacy([(getattr(distilbert, name), saved(name)[0], name, mask) for name, mask in cases])


@pytest.mark.parametrize("name", HEADS)
def test_saved_by_us_loads_in_reference(saved, name, tmp_path):
    folder, reference = saved(name)
    check_reload_by_reference(getattr(distilbert, name), folder, tmp_path, name, head_labels(name, reference.config))


@pytest.mark.parametrize("num_labels, problem_type", [(1, None), (3, "multi_label_classification")])
def test_regression_and_multi_label_losses(tmp_path, num_labels, problem_type):
    check_problem_type(distilbert.DistilBertForSequenceClassification, "DistilBertForSequenceClassification",
                       "DistilBertConfig", tmp_path, TINY, num_labels, problem_type)


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels=2"):
        distilbert.DistilBertForQuestionAnswering(distilbert.DistilBertConfig(**TINY, num_labels=3))
