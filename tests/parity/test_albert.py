"""ALBERT parity with the reference: every head, shared layer groups, factorised embeddings, save/load both ways."""

import pytest
import torch

import leanformers
from leanformers.models import albert

from .encoder_parity import (check_head, check_head_mask_against_legacy, check_reload_by_reference, head_labels,
                             reference_cache)
from .harness import TINY, random_inputs

# (num_hidden_groups, inner_group_num, num_hidden_layers): one shared layer, one group per layer, two inner layers
LAYOUTS = {"shared": (1, 1, 2), "grouped": (2, 1, 2), "inner": (1, 2, 2), "mixed": (2, 2, 4)}
HEADS = {  # class -> Auto class
    "AlbertModel": "AutoModel", "AlbertForPreTraining": "AutoModelForPreTraining",
    "AlbertForMaskedLM": "AutoModelForMaskedLM", "AlbertForSequenceClassification":
    "AutoModelForSequenceClassification", "AlbertForMultipleChoice": "AutoModelForMultipleChoice",
    "AlbertForTokenClassification": "AutoModelForTokenClassification",
    "AlbertForQuestionAnswering": "AutoModelForQuestionAnswering",
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    get = reference_cache(tmp_path_factory, dict(TINY, embedding_size=16, attn_implementation="eager"))

    def saved(name, layout="shared", **extra):
        groups, inner, layers = LAYOUTS[layout]
        return get(name, "AlbertConfig", num_hidden_groups=groups, inner_group_num=inner, num_hidden_layers=layers,
                   **extra)
    return saved


@pytest.mark.parametrize("name", HEADS)
def test_head_parity(saved, name):
    folder, reference = saved(name)
    check_head(getattr(albert, name), getattr(leanformers, HEADS[name]), folder, reference, name)


@pytest.mark.parametrize("layout", ["grouped", "inner", "mixed"])
@pytest.mark.parametrize("name", ["AlbertModel", "AlbertForPreTraining"])
def test_layer_groups(saved, name, layout):
    """Shared groups and inner layers: hidden states come one per layer application, as in transformers 5."""
    folder, reference = saved(name, layout)
    model = check_head(getattr(albert, name), getattr(leanformers, HEADS[name]), folder, reference, name)
    assert len(model.base_model.encoder.albert_layer_groups) == LAYOUTS[layout][0]


@pytest.mark.parametrize("problem", ["regression", "multi_label_classification"])
def test_sequence_classification_problem_types(saved, problem):
    num_labels = 1 if problem == "regression" else 3
    folder, reference = saved("AlbertForSequenceClassification", num_labels=num_labels)
    inputs = random_inputs()
    labels = torch.rand(2, num_labels).round() if num_labels > 1 else torch.randn(2)
    reference.config.problem_type = None
    expected = reference(**inputs, labels=labels).loss
    ours = albert.AlbertForSequenceClassification.from_pretrained(folder)
    torch.testing.assert_close(ours(**inputs, labels=labels).loss, expected)
    assert ours.config.problem_type == reference.config.problem_type == problem


@pytest.mark.parametrize("name", ["AlbertForPreTraining", "AlbertForMaskedLM", "AlbertForSequenceClassification"])
def test_saved_by_us_loads_in_reference(saved, tmp_path, name):
    folder, reference = saved(name, "mixed")
    check_reload_by_reference(getattr(albert, name), folder, tmp_path, name, head_labels(name, reference.config))


@torch.no_grad()
def test_inputs_embeds_and_untied_decoder(saved):
    folder, reference = saved("AlbertForMaskedLM", tie_word_embeddings=False)
    ours = albert.AlbertForMaskedLM.from_pretrained(folder)
    assert ours.predictions.decoder.weight is not ours.albert.embeddings.word_embeddings.weight
    embeds = torch.randn(2, 5, 16)
    positions = torch.tensor([[4, 3, 2, 1, 0]])
    for kwargs in ({"inputs_embeds": embeds}, {"inputs_embeds": embeds, "position_ids": positions}):
        torch.testing.assert_close(ours(**kwargs).logits, reference(**kwargs).logits)


def test_head_mask_matches_legacy_reference(saved):
    """head_mask rows are read per layer, and per inner layer within a group (ALBERT's own indexing in 4.x)."""
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 1.0]])
    mixed = torch.tensor([1.0, 1.0, 0.0, 1.0])
    cases = [("AlbertModel", "shared", mask), ("AlbertModel", "grouped", mixed),
             ("AlbertForPreTraining", "grouped", mask), ("AlbertForMultipleChoice", "shared", mask),
             ("AlbertForQuestionAnswering", "shared", mask)]
    cases = [(getattr(albert, name), saved(name, layout)[0], name, head_mask) for name, layout, head_mask in cases]
    # two inner layers: 4.x returned one hidden state per group step, transformers 5 (and we) one per layer
    cases.append((albert.AlbertForMaskedLM, saved("AlbertForMaskedLM", "inner")[0], "AlbertForMaskedLM", mask,
                  ("hidden_states",)))
    check_head_mask_against_legacy(cases)
