"""DeBERTa parity with the reference: every head, each disentangled-attention setting (c2p / p2c / both, clamped
relative distances, no relative attention, no absolute positions), the legacy and the newer MLM head, padded batches,
training-mode dropout, and save/load both ways. Helpers here serve test_deberta_v2.py too."""

import pytest
import torch

import leanformers
from leanformers.errors import ConfigError
from leanformers.models import deberta_heads

from .encoder_parity import (FLAGS, check_embeds_and_positions, check_head, check_reload_by_reference, head_inputs,
                             head_labels, reference_cache)
from .harness import assert_outputs_close

# odd sizes: 3 heads of width 10, an intermediate size that is no multiple of anything
BASE = dict(vocab_size=99, hidden_size=30, num_hidden_layers=2, num_attention_heads=3, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2, attn_implementation="eager")
# both terms, distances clamped at 4 (inputs are 7 long)
BOTH = dict(relative_attention=True, pos_att_type="c2p|p2c", max_relative_positions=4)
VARIANTS = {
    "c2p-projected": dict(relative_attention=True, pos_att_type="c2p", max_relative_positions=3, embedding_size=20),
    "p2c-no-absolute": dict(relative_attention=True, pos_att_type="p2c", position_biased_input=False),
    "absolute-only": dict(relative_attention=False, position_biased_input=True, type_vocab_size=0),
}
HEADS = {"Model": "AutoModel", "ForMaskedLM": "AutoModelForMaskedLM",
         "ForSequenceClassification": "AutoModelForSequenceClassification",
         "ForTokenClassification": "AutoModelForTokenClassification",
         "ForQuestionAnswering": "AutoModelForQuestionAnswering"}


def saved_fixture(tmp_path_factory, family: str):
    """saved(head, **config) -> (folder, reference model) of `family` ("Deberta" / "DebertaV2")."""
    get = reference_cache(tmp_path_factory, BASE)

    def saved(head, **extra):
        if head in ("ForSequenceClassification", "ForTokenClassification"):
            extra.setdefault("num_labels", 3)
        return get(family + head, family + "Config", **extra)
    return saved


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return saved_fixture(tmp_path_factory, "Deberta")


def check_training_dropout(cls, folder, reference):
    """In training, attention weights are those of eval with a share of them zeroed and the rest scaled by
    1 / (1 - p), like the reference's."""
    ours = cls.from_pretrained(folder)
    inputs = head_inputs(type(reference).__name__, reference.config)
    for model in (ours, reference):
        with torch.no_grad():
            expected = model.eval()(**inputs, output_attentions=True).attentions[0]
            got = model.train()(**inputs, output_attentions=True).attentions[0]
        kept = got != 0
        assert 0.3 < 1 - kept.float().mean() < 0.7
        torch.testing.assert_close(got[kept], expected[kept] / 0.5)
        model.eval()


def check_sequence_losses(cls, family, saved):
    """DeBERTa's own losses when problem_type is unset (regression with flattened logits, classes with negative
    labels left out, soft label distributions), and the usual ones when it is set."""
    g = torch.Generator().manual_seed(3)
    cases = [({"num_labels": 1}, torch.randn(2, generator=g)),
             ({"num_labels": 3}, torch.tensor([2, -1])),
             ({"num_labels": 3}, torch.tensor([-1, -1])),
             ({"num_labels": 3}, torch.softmax(torch.randn(2, 3, generator=g), -1)),
             ({"num_labels": 3, "problem_type": "multi_label_classification"}, torch.tensor([[1.0, 0, 1], [0, 1, 0]])),
             ({"num_labels": 1, "problem_type": "regression"}, torch.randn(2, generator=g))]
    for config, labels in cases:
        folder, reference = saved("ForSequenceClassification", **BOTH, **config)
        ours = cls.from_pretrained(folder)
        inputs = head_inputs(family + "ForSequenceClassification", reference.config)
        with torch.no_grad():
            expected = reference(**inputs, labels=labels)
            assert_outputs_close(ours(**inputs, labels=labels), expected)
        assert ours.config.problem_type == reference.config.problem_type


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(saved, head):
    folder, reference = saved(head, **BOTH)
    check_head(getattr(deberta_heads, "Deberta" + head), getattr(leanformers, HEADS[head]), folder, reference,
               "Deberta" + head)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("head", ["Model", "ForMaskedLM"])
def test_attention_variants(saved, variant, head):
    folder, reference = saved(head, **VARIANTS[variant])
    check_head(getattr(deberta_heads, "Deberta" + head), getattr(leanformers, HEADS[head]), folder, reference,
               "Deberta" + head)


def test_new_mlm_head(saved):
    """legacy=False: `lm_predictions.lm_head` scores against the word embeddings."""
    folder, reference = saved("ForMaskedLM", **BOTH, legacy=False)
    model = check_head(deberta_heads.DebertaForMaskedLM, leanformers.AutoModelForMaskedLM, folder, reference,
                       "DebertaForMaskedLM")
    assert not hasattr(model, "cls") and model.get_output_embeddings() is None


def test_embeds_positions_and_defaults(saved):
    folder, reference = saved("ForMaskedLM", **BOTH)
    positions = torch.tensor([[2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 4, 3]])
    check_embeds_and_positions(deberta_heads.DebertaForMaskedLM.from_pretrained(folder), reference, positions)
    assert type(leanformers.AutoModelForPreTraining.from_pretrained(folder)) is deberta_heads.DebertaForMaskedLM


def test_config_defaults():
    import transformers

    ours = deberta_heads.DebertaConfig(pos_att_type="C2P|p2c")
    theirs = transformers.DebertaConfig(pos_att_type="C2P|p2c")
    for key in (*ours.defaults, "pooler_hidden_size"):
        assert getattr(ours, key) == getattr(theirs, key), key


def test_sequence_classification_losses(saved):
    check_sequence_losses(deberta_heads.DebertaForSequenceClassification, "Deberta", saved)


def test_training_dropout(tmp_path):
    from .harness import save_reference_model

    reference = save_reference_model("DebertaModel", "DebertaConfig", tmp_path, **{
        **BASE, **BOTH, "num_hidden_layers": 1, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.5})
    check_training_dropout(deberta_heads.DebertaModel, tmp_path, reference)


@pytest.mark.parametrize("head", ["ForMaskedLM", "ForSequenceClassification", "ForQuestionAnswering"])
def test_saved_by_us_loads_in_reference(saved, tmp_path, head):
    folder, reference = saved(head, **BOTH)
    name = "Deberta" + head
    check_reload_by_reference(getattr(deberta_heads, name), folder, tmp_path, name, head_labels(name, reference.config))


def test_refusals(saved):
    folder, _ = saved("Model", **BOTH)
    model = deberta_heads.DebertaModel.from_pretrained(folder)
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(ConfigError, match="head_mask"):
        model(ids, head_mask=torch.ones(3))
    with pytest.raises(TypeError, match="unexpected keyword"):
        model(ids, atention_mask=torch.ones(1, 3))
    with pytest.raises(ConfigError, match="pos_att_type"):
        deberta_heads.DebertaModel(deberta_heads.DebertaConfig(**{**BASE, **BOTH, "pos_att_type": ["c2p", "p2p"]}))
    with pytest.raises(ConfigError, match="talking_head"):
        deberta_heads.DebertaModel(deberta_heads.DebertaConfig(**BASE, talking_head=True))
    with torch.no_grad():
        assert model(ids, **FLAGS, return_dict=False)[0].shape == (1, 3, 30)


@pytest.mark.parametrize("legacy", [True, False])
def test_resize_keeps_the_scores_of_known_tokens(saved, legacy):
    folder, _ = saved("ForMaskedLM", **BOTH, legacy=legacy)
    model = deberta_heads.DebertaForMaskedLM.from_pretrained(folder)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = model(ids).logits
        model.resize_token_embeddings(110)
        after = model(ids).logits
    assert after.shape[-1] == 110 == model.config.vocab_size
    torch.testing.assert_close(after[..., :99], before)
