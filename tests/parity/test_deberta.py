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
AUTO_CLASSES = {"Model": "AutoModel", "ForMaskedLM": "AutoModelForMaskedLM",
                "ForSequenceClassification": "AutoModelForSequenceClassification",
                "ForTokenClassification": "AutoModelForTokenClassification",
                "ForQuestionAnswering": "AutoModelForQuestionAnswering",
                "ForMultipleChoice": "AutoModelForMultipleChoice"}
HEADS = [head for head in AUTO_CLASSES if head != "ForMultipleChoice"]  # DeBERTa (v1) has no multiple-choice head


class Family:
    """The reference models of one family ("Deberta" / "DebertaV2", classes in `module`), each saved once per
    config, and the checks test_deberta_v2.py runs too."""

    def __init__(self, tmp_path_factory, module, name: str):
        self.module, self.name = module, name
        self.get = reference_cache(tmp_path_factory, BASE)

    def saved(self, head, **extra):
        """-> (folder, reference model) of the `head` class with `extra` config."""
        if head in ("ForSequenceClassification", "ForTokenClassification"):
            extra.setdefault("num_labels", 3)
        return self.get(self.name + head, self.name + "Config", **extra)

    def check(self, head, **config):
        """Every output of `head` equals the reference's (check_head); -> our model."""
        folder, reference = self.saved(head, **config)
        name = self.name + head
        return check_head(getattr(self.module, name), getattr(leanformers, AUTO_CLASSES[head]), folder, reference,
                          name)

    def check_reload(self, tmp_path, head, **config):
        folder, reference = self.saved(head, **config)
        name = self.name + head
        check_reload_by_reference(getattr(self.module, name), folder, tmp_path, name,
                                  head_labels(name, reference.config))

    def check_embeds_and_positions(self, **config):
        """inputs_embeds and explicit positions as the reference; AutoModelForPreTraining picks the masked LM."""
        folder, reference = self.saved("ForMaskedLM", **config)
        cls = getattr(self.module, self.name + "ForMaskedLM")
        positions = torch.tensor([[2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 4, 3]])
        check_embeds_and_positions(cls.from_pretrained(folder), reference, positions)
        assert type(leanformers.AutoModelForPreTraining.from_pretrained(folder)) is cls

    def check_training_dropout(self, tmp_path, **config):
        """In training, attention weights are those of eval with a share of them zeroed and the rest scaled by
        1 / (1 - p), like the reference's."""
        from .harness import save_reference_model

        reference = save_reference_model(self.name + "Model", self.name + "Config", tmp_path, **{
            **BASE, **config, "num_hidden_layers": 1, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.5})
        ours = getattr(self.module, self.name + "Model").from_pretrained(tmp_path)
        inputs = head_inputs(type(reference).__name__, reference.config)
        for model in (ours, reference):
            with torch.no_grad():
                expected = model.eval()(**inputs, output_attentions=True).attentions[0]
                got = model.train()(**inputs, output_attentions=True).attentions[0]
            kept = got != 0
            assert 0.3 < 1 - kept.float().mean() < 0.7
            torch.testing.assert_close(got[kept], expected[kept] / 0.5)
            model.eval()

    def check_sequence_losses(self, **config):
        """DeBERTa's own losses when problem_type is unset (regression with flattened logits, classes with negative
        labels left out, soft label distributions), and the usual ones when it is set."""
        g = torch.Generator().manual_seed(3)
        cases = [({"num_labels": 1}, torch.randn(2, generator=g)),
                 ({"num_labels": 3}, torch.tensor([2, -1])),
                 ({"num_labels": 3}, torch.tensor([-1, -1])),
                 ({"num_labels": 3}, torch.softmax(torch.randn(2, 3, generator=g), -1)),
                 ({"num_labels": 3, "problem_type": "multi_label_classification"},
                  torch.tensor([[1.0, 0, 1], [0, 1, 0]])),
                 ({"num_labels": 1, "problem_type": "regression"}, torch.randn(2, generator=g))]
        name = self.name + "ForSequenceClassification"
        for case, labels in cases:
            folder, reference = self.saved("ForSequenceClassification", **case, **config)
            ours = getattr(self.module, name).from_pretrained(folder)
            inputs = head_inputs(name, reference.config)
            with torch.no_grad():
                expected = reference(**inputs, labels=labels)
                assert_outputs_close(ours(**inputs, labels=labels), expected)
            assert ours.config.problem_type == reference.config.problem_type


def check_config_defaults(ours, theirs):
    for key in (*ours.defaults, "pooler_hidden_size"):
        assert getattr(ours, key) == getattr(theirs, key), key


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return Family(tmp_path_factory, deberta_heads, "Deberta")


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(family, head):
    family.check(head, **BOTH)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("head", ["Model", "ForMaskedLM"])
def test_attention_variants(family, variant, head):
    family.check(head, **VARIANTS[variant])


def test_new_mlm_head(family):
    """legacy=False: `lm_predictions.lm_head` scores against the word embeddings."""
    model = family.check("ForMaskedLM", **BOTH, legacy=False)
    assert not hasattr(model, "cls") and model.get_output_embeddings() is None


def test_embeds_positions_and_defaults(family):
    family.check_embeds_and_positions(**BOTH)


def test_config_defaults():
    import transformers

    check_config_defaults(deberta_heads.DebertaConfig(pos_att_type="C2P|p2c"),
                          transformers.DebertaConfig(pos_att_type="C2P|p2c"))


def test_sequence_classification_losses(family):
    family.check_sequence_losses(**BOTH)


def test_training_dropout(family, tmp_path):
    family.check_training_dropout(tmp_path, **BOTH)


@pytest.mark.parametrize("head", ["ForMaskedLM", "ForSequenceClassification", "ForQuestionAnswering"])
def test_saved_by_us_loads_in_reference(family, tmp_path, head):
    family.check_reload(tmp_path, head, **BOTH)


def test_refusals(family):
    folder, _ = family.saved("Model", **BOTH)
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
def test_resize_keeps_the_scores_of_known_tokens(family, legacy):
    folder, _ = family.saved("ForMaskedLM", **BOTH, legacy=legacy)
    model = deberta_heads.DebertaForMaskedLM.from_pretrained(folder)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = model(ids).logits
        model.resize_token_embeddings(110)
        after = model(ids).logits
    assert after.shape[-1] == 110 == model.config.vocab_size
    torch.testing.assert_close(after[..., :99], before)
