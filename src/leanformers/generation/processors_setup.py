"""The logits processors and stopping criteria a GenerationConfig asks for, in Transformers' order."""

from __future__ import annotations

import logging

import torch

from ..errors import ConfigError
from . import logits_process as lp
from .stopping_criteria import (EosTokenCriteria, MaxLengthCriteria, MaxTimeCriteria, StoppingCriteria,
                                StoppingCriteriaList, StopStringCriteria)

logger = logging.getLogger("leanformers")


def build_logits_processor(model, generation_config, input_ids_seq_length=None, encoder_input_ids=None,
                           prefix_allowed_tokens_fn=None, logits_processor=None, device=None, model_kwargs=None):
    """Processors (then, when sampling, warpers) for these settings, merged with the user's list."""
    config = generation_config
    eos = config._eos_token_tensor
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    out = lp.LogitsProcessorList()
    if config.sequence_bias is not None:
        out.append(lp.SequenceBiasLogitsProcessor(sequence_bias=config.sequence_bias))
    groups = config.num_beam_groups or 1
    if config.diversity_penalty is not None and config.diversity_penalty > 0.0 and groups > 1:
        out.append(lp.HammingDiversityLogitsProcessor(config.diversity_penalty, config.num_beams, groups))
    has_encoder_ids = (encoder_input_ids is not None and encoder_input_ids.dim() == 2
                       and not bool((encoder_input_ids < 0).any()))
    if config.encoder_repetition_penalty is not None and config.encoder_repetition_penalty != 1.0:
        if has_encoder_ids:
            out.append(lp.EncoderRepetitionPenaltyLogitsProcessor(config.encoder_repetition_penalty,
                                                                  encoder_input_ids))
        else:
            logger.warning("encoder_repetition_penalty needs input_ids; it is ignored.")
    if config.repetition_penalty is not None and config.repetition_penalty != 1.0:
        mask = (model_kwargs or {}).get("decoder_attention_mask" if encoder_decoder else "attention_mask")
        padding = (mask != 0).int().argmax(dim=1) if mask is not None else None
        out.append(lp.RepetitionPenaltyLogitsProcessor(config.repetition_penalty, prompt_ignore_length=padding))
    if config.no_repeat_ngram_size is not None and config.no_repeat_ngram_size > 0:
        out.append(lp.NoRepeatNGramLogitsProcessor(config.no_repeat_ngram_size))
    if config.encoder_no_repeat_ngram_size is not None and config.encoder_no_repeat_ngram_size > 0:
        if has_encoder_ids:
            out.append(lp.EncoderNoRepeatNGramLogitsProcessor(config.encoder_no_repeat_ngram_size,
                                                              encoder_input_ids))
        else:
            logger.warning("encoder_no_repeat_ngram_size needs input_ids; it is ignored.")
    if config.bad_words_ids is not None:
        out.append(lp.NoBadWordsLogitsProcessor(config.bad_words_ids, eos))
    _length_processors(out, config, eos, input_ids_seq_length, device)
    if prefix_allowed_tokens_fn is not None:
        beams = config.num_beams // groups if groups > 1 else max(config.num_beams, config.num_return_sequences)
        out.append(lp.PrefixConstrainedLogitsProcessor(prefix_allowed_tokens_fn, beams))
    _forcing_processors(out, config, eos, input_ids_seq_length, device)
    out = merge_lists(out, logits_processor or [])
    if config.do_sample:
        _warpers(out, config, eos, device)
    if config.watermarking_config is not None:
        raise ConfigError("watermarking_config is not supported.")
    if config.renormalize_logits is True:
        out.append(lp.LogitNormalization())
    return out


def _length_processors(out, config, eos, prompt_length, device):
    if config.min_length is not None and eos is not None and config.min_length > 0:
        out.append(lp.MinLengthLogitsProcessor(config.min_length, eos, device=device))
    if config.min_new_tokens is not None and eos is not None and config.min_new_tokens > 0:
        out.append(lp.MinNewTokensLengthLogitsProcessor(prompt_length, config.min_new_tokens, eos, device=device))


def _forcing_processors(out, config, eos, prompt_length, device):
    if config.forced_bos_token_id is not None:
        out.append(lp.ForcedBOSTokenLogitsProcessor(config.forced_bos_token_id))
    if config.forced_eos_token_id is not None:
        out.append(lp.ForcedEOSTokenLogitsProcessor(config.max_length, config.forced_eos_token_id, device=device))
    if config.remove_invalid_values is True:
        out.append(lp.InfNanRemoveLogitsProcessor())
    if config.exponential_decay_length_penalty is not None:
        out.append(lp.ExponentialDecayLengthPenalty(config.exponential_decay_length_penalty, eos, prompt_length))
    if config.suppress_tokens is not None:
        out.append(lp.SuppressTokensLogitsProcessor(config.suppress_tokens, device=device))
    if config.begin_suppress_tokens is not None:
        begin = prompt_length
        if not (prompt_length > 1 or config.forced_bos_token_id is None):
            begin += 1
        out.append(lp.SuppressTokensAtBeginLogitsProcessor(config.begin_suppress_tokens, begin, device=device))


def _warpers(out, config, eos, device):
    """Sampling filters, in Transformers' order (temperature first, so top-k/top-p see tempered scores)."""
    keep = 1
    if config.num_beams is not None and config.num_beams > 1:
        keep = eos.shape[0] + 1 if isinstance(eos, torch.Tensor) else 2
    if config.temperature is not None and config.temperature != 1.0:
        out.append(lp.TemperatureLogitsWarper(float(config.temperature)))
    if config.top_h is not None:
        raise ConfigError("top_h sampling is not supported; use top_p, min_p or typical_p.")
    if config.top_k is not None and config.top_k != 0:
        out.append(lp.TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=keep))
    if config.top_p is not None and config.top_p < 1.0:
        out.append(lp.TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=keep))
    if config.min_p is not None:
        out.append(lp.MinPLogitsWarper(min_p=config.min_p, min_tokens_to_keep=keep))
    if config.typical_p is not None and config.typical_p < 1.0:
        out.append(lp.TypicalLogitsWarper(mass=config.typical_p, min_tokens_to_keep=keep))
    if config.epsilon_cutoff is not None and 0.0 < config.epsilon_cutoff < 1.0:
        out.append(lp.EpsilonLogitsWarper(epsilon=config.epsilon_cutoff, min_tokens_to_keep=keep))
    if config.eta_cutoff is not None and 0.0 < config.eta_cutoff < 1.0:
        out.append(lp.EtaLogitsWarper(epsilon=config.eta_cutoff, min_tokens_to_keep=keep, device=device))


def build_stopping_criteria(model, generation_config, stopping_criteria=None, tokenizer=None):
    """Length, time, stop-string and EOS criteria for these settings, merged with the user's list."""
    config = generation_config
    out = StoppingCriteriaList()
    if config.max_length is not None:
        limit = getattr(model.config, "max_position_embeddings", None)
        out.append(MaxLengthCriteria(config.max_length, limit if limit is not None and limit > 0 else None))
    if config.max_time is not None:
        out.append(MaxTimeCriteria(max_time=config.max_time))
    if config.stop_strings is not None:
        if tokenizer is None:
            raise ConfigError("stop_strings need the model's tokenizer to read the generated text: pass "
                              "generate(..., tokenizer=tokenizer).")
        out.append(StopStringCriteria(stop_strings=config.stop_strings, tokenizer=tokenizer))
    if config._eos_token_tensor is not None:
        out.append(EosTokenCriteria(eos_token_id=config._eos_token_tensor))
    return merge_lists(out, stopping_criteria or [])


def merge_lists(defaults, custom):
    """The built list with each entry replaced by the user's one of the same type; the user's others appended."""
    if len(custom) == 0:
        return defaults
    merged = type(defaults)()
    for item in defaults:
        mine = next((c for c in custom if type(c) is type(item)), None)
        if mine is not None:
            kind = "stopping criteria" if isinstance(mine, StoppingCriteria) else "logits processor"
            logger.warning(f"A {kind} {type(mine).__name__} was passed to generate() and is also built from the "
                           f"generation settings; the one passed takes precedence.")
        merged.append(mine if mine is not None else item)
    merged.extend(c for c in custom if c not in merged)
    return merged
