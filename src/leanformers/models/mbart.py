"""mBART: BART with pre-norm blocks, a LayerNorm after each stack, and decoder inputs that start with the target
language code (the last token of each labels row) instead of a fixed start token."""

from __future__ import annotations

from ..configuration import PretrainedConfig
from .bart import (BART_ATTRIBUTE_MAP, BART_DEFAULTS, BartDecoder, BartEncoder, BartForCausalLM,
                   BartForConditionalGeneration, BartForQuestionAnswering, BartForSequenceClassification, BartModel,
                   BartPreTrainedModel)


class MBartConfig(PretrainedConfig):
    model_type = "mbart"
    attribute_map = BART_ATTRIBUTE_MAP
    defaults = dict(BART_DEFAULTS, classifier_dropout=0.0, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                    decoder_start_token_id=None, forced_eos_token_id=2)


def shift_tokens_right(input_ids, pad_token_id: int):
    """mBART's decoder inputs: each row's last non-padding token (the language code) moved to the front, the rest
    shifted one step right; -100 becomes padding first."""
    if pad_token_id is None:
        raise ValueError("config.pad_token_id is not set; set it to the padding token id.")
    tokens = input_ids.masked_fill(input_ids == -100, pad_token_id)
    last = (tokens.ne(pad_token_id).sum(dim=1) - 1).unsqueeze(-1)
    shifted = tokens.clone()
    shifted[:, 1:] = tokens[:, :-1]
    shifted[:, 0] = tokens.gather(1, last).squeeze(-1)
    return shifted


class MBartPreTrainedModel(BartPreTrainedModel):
    config_class = MBartConfig
    pre_norm = True

    def prepare_decoder_input_ids_from_labels(self, labels):
        return shift_tokens_right(labels, self.config.pad_token_id)


class MBartEncoder(MBartPreTrainedModel, BartEncoder):
    pass


class MBartDecoder(MBartPreTrainedModel, BartDecoder):
    pass


class MBartModel(MBartPreTrainedModel, BartModel):
    encoder_class, decoder_class = MBartEncoder, MBartDecoder


class MBartForConditionalGeneration(MBartPreTrainedModel, BartForConditionalGeneration):
    base_class = MBartModel


class MBartForSequenceClassification(MBartPreTrainedModel, BartForSequenceClassification):
    base_class = MBartModel


class MBartForQuestionAnswering(MBartPreTrainedModel, BartForQuestionAnswering):
    base_class = MBartModel


class MBartForCausalLM(MBartPreTrainedModel, BartForCausalLM):
    decoder_class = MBartDecoder
