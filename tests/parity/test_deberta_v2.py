"""DeBERTa-v2/v3 parity with the reference: every head, log-bucketed and plain relative positions, shared and separate
position projections, the position-table LayerNorm, the convolution beside the first layer, no relative attention,
both MLM heads, padded batches, training-mode dropout, and save/load both ways."""

import pytest
import torch

import leanformers
from leanformers.models import deberta_v2

from .encoder_parity import check_embeds_and_positions, check_head, check_reload_by_reference, head_inputs, head_labels
from .test_deberta import BASE, check_sequence_losses, check_training_dropout, saved_fixture

# v3-like: 4 buckets over distances up to 16, shared projections, normalised table, conv, no absolute positions
V3 = dict(relative_attention=True, pos_att_type="p2c|c2p", position_buckets=4, max_relative_positions=16,
          share_att_key=True, norm_rel_ebd="layer_norm", conv_kernel_size=3, position_biased_input=False)
VARIANTS = {
    "c2p-clamped": dict(relative_attention=True, pos_att_type="c2p", position_buckets=-1, max_relative_positions=3,
                        share_att_key=False, norm_rel_ebd="none", conv_kernel_size=0),
    "p2c-projected": dict(relative_attention=True, pos_att_type="p2c", position_buckets=6, max_relative_positions=10,
                          share_att_key=False, embedding_size=20, conv_kernel_size=1),
    "both-separate": dict(relative_attention=True, pos_att_type="c2p|p2c", position_buckets=4,
                          max_relative_positions=8, share_att_key=False, norm_rel_ebd="layer_norm"),
    "absolute-only": dict(relative_attention=False, position_biased_input=True, conv_kernel_size=3),
}
HEADS = {"Model": "AutoModel", "ForMaskedLM": "AutoModelForMaskedLM",
         "ForSequenceClassification": "AutoModelForSequenceClassification",
         "ForTokenClassification": "AutoModelForTokenClassification",
         "ForQuestionAnswering": "AutoModelForQuestionAnswering", "ForMultipleChoice": "AutoModelForMultipleChoice"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return saved_fixture(tmp_path_factory, "DebertaV2")


def _check(saved, head, **config):
    folder, reference = saved(head, **config)
    name = "DebertaV2" + head
    return check_head(getattr(deberta_v2, name), getattr(leanformers, HEADS[head]), folder, reference, name)


@pytest.mark.parametrize("head", HEADS)
def test_head_parity(saved, head):
    _check(saved, head, **V3)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("head", ["Model", "ForMaskedLM"])
def test_attention_variants(saved, variant, head):
    _check(saved, head, **VARIANTS[variant])


def test_new_mlm_head(saved):
    model = _check(saved, "ForMaskedLM", **V3, legacy=False)
    assert hasattr(model, "lm_predictions") and not hasattr(model, "cls")


def test_embeds_positions_and_defaults(saved):
    import transformers

    folder, reference = saved("ForMaskedLM", **VARIANTS["both-separate"])
    positions = torch.tensor([[2, 3, 4, 5, 6, 7, 8], [9, 8, 7, 6, 5, 4, 3]])
    check_embeds_and_positions(deberta_v2.DebertaV2ForMaskedLM.from_pretrained(folder), reference, positions)
    assert type(leanformers.AutoModelForPreTraining.from_pretrained(folder)) is deberta_v2.DebertaV2ForMaskedLM
    ours, theirs = deberta_v2.DebertaV2Config(), transformers.DebertaV2Config()
    for key in (*ours.defaults, "pooler_hidden_size"):
        assert getattr(ours, key) == getattr(theirs, key), key


def test_long_input_buckets(saved):
    """40 tokens over 4 buckets up to distance 16: most pairs fall in the logarithmic and the clamped range."""
    folder, reference = saved("Model", **V3)
    ours = deberta_v2.DebertaV2Model.from_pretrained(folder)
    ids = torch.randint(3, 99, (1, 40), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_close = torch.testing.assert_close
        assert_close(ours(ids).last_hidden_state, reference(ids).last_hidden_state, atol=1e-5, rtol=1e-4)


def test_sequence_classification_losses(saved):
    check_sequence_losses(deberta_v2.DebertaV2ForSequenceClassification, "DebertaV2",
                          lambda head, **config: saved(head, **{**config, **V3}))


def test_training_dropout(tmp_path):
    from .harness import save_reference_model

    reference = save_reference_model("DebertaV2Model", "DebertaV2Config", tmp_path, **{
        **BASE, **V3, "num_hidden_layers": 1, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.5})
    check_training_dropout(deberta_v2.DebertaV2Model, tmp_path, reference)


@pytest.mark.parametrize("head", ["ForMaskedLM", "ForMultipleChoice", "ForTokenClassification"])
def test_saved_by_us_loads_in_reference(saved, tmp_path, head):
    folder, reference = saved(head, **V3)
    name = "DebertaV2" + head
    check_reload_by_reference(getattr(deberta_v2, name), folder, tmp_path, name, head_labels(name, reference.config))


def test_half_precision_padded_batch_stays_finite(saved):
    """float16 with padded rows: no -inf from the masking, results close to float32's."""
    folder, reference = saved("Model", **V3)
    ours = deberta_v2.DebertaV2Model.from_pretrained(folder)
    inputs = head_inputs("DebertaV2Model", reference.config)
    with torch.no_grad():
        full = ours(**inputs, output_attentions=True).last_hidden_state
        for want in (False, True):
            half = ours.half()(**inputs, output_attentions=want).last_hidden_state
            assert torch.isfinite(half).all()
            torch.testing.assert_close(half.float(), full, atol=2e-2, rtol=2e-2)
            ours.float()
