"""DeBERTa-v2/v3 parity with the reference: every head, log-bucketed and plain relative positions, shared and separate
position projections, the position-table LayerNorm, the convolution beside the first layer, no relative attention,
both MLM heads, padded batches, training-mode dropout, and save/load both ways."""

import pytest
import torch

from leanformers.models import deberta_v2

from .encoder_parity import head_inputs
from .test_deberta import AUTO_CLASSES, Family, check_config_defaults

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


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    return Family(tmp_path_factory, deberta_v2, "DebertaV2")


@pytest.mark.parametrize("head", AUTO_CLASSES)
def test_head_parity(family, head):
    family.check(head, **V3)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("head", ["Model", "ForMaskedLM"])
def test_attention_variants(family, variant, head):
    family.check(head, **VARIANTS[variant])


def test_new_mlm_head(family):
    model = family.check("ForMaskedLM", **V3, legacy=False)
    assert hasattr(model, "lm_predictions") and not hasattr(model, "cls")


def test_embeds_positions_and_defaults(family):
    import transformers

    family.check_embeds_and_positions(**VARIANTS["both-separate"])
    check_config_defaults(deberta_v2.DebertaV2Config(), transformers.DebertaV2Config())


def test_long_input_buckets(family):
    """40 tokens over 4 buckets up to distance 16: most pairs fall in the logarithmic and the clamped range."""
    folder, reference = family.saved("Model", **V3)
    ours = deberta_v2.DebertaV2Model.from_pretrained(folder)
    ids = torch.randint(3, 99, (1, 40), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        assert_close = torch.testing.assert_close
        assert_close(ours(ids).last_hidden_state, reference(ids).last_hidden_state, atol=1e-5, rtol=1e-4)


def test_sequence_classification_losses(family):
    family.check_sequence_losses(**V3)


def test_training_dropout(family, tmp_path):
    family.check_training_dropout(tmp_path, **V3)


@pytest.mark.parametrize("head", ["ForMaskedLM", "ForMultipleChoice", "ForTokenClassification"])
def test_saved_by_us_loads_in_reference(family, tmp_path, head):
    family.check_reload(tmp_path, head, **V3)


def test_half_precision_padded_batch_stays_finite(family):
    """float16 with padded rows: no -inf from the masking, results close to float32's."""
    folder, reference = family.saved("Model", **V3)
    ours = deberta_v2.DebertaV2Model.from_pretrained(folder)
    inputs = head_inputs("DebertaV2Model", reference.config)
    with torch.no_grad():
        full = ours(**inputs, output_attentions=True).last_hidden_state
        for want in (False, True):
            half = ours.half()(**inputs, output_attentions=want).last_hidden_state
            assert torch.isfinite(half).all()
            torch.testing.assert_close(half.float(), full, atol=2e-2, rtol=2e-2)
            ours.float()
