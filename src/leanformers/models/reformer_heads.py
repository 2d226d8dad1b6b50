"""Reformer's task heads: causal LM (with generate over the bucket/state cache), masked LM, sequence classification
and extractive question answering. Each reads the 2 * hidden_size output of the reversible encoder."""

from __future__ import annotations

import torch
from torch import nn

from ..chunking import apply_in_chunks
from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import ClassificationHead, OutputEmbeddings, check_kwargs, head_dropout_prob
from ..layers import (causal_lm_loss, keep_last_logits, sequence_classification_loss, span_logits, span_loss,
                      token_loss)
from ..outputs import MaskedLMOutput, QuestionAnsweringModelOutput, SequenceClassifierOutput, pack
from .reformer import (ReformerConfig, ReformerDynamicCache, ReformerModel, ReformerModelOutput,
                       ReformerModelWithLMHeadOutput, ReformerPreTrainedModel)

_BASE_ARGS = ("input_ids", "position_ids", "attention_mask", "inputs_embeds", "num_hashes", "output_hidden_states",
              "output_attentions")


def _encode(model, args: dict, **extra):
    """The base model's output for a head's forward() arguments (its locals())."""
    check_kwargs(model, args["kwargs"])
    return model.reformer(**{name: args[name] for name in _BASE_ARGS}, **extra, return_dict=True)


class ReformerOnlyLMHead(nn.Module):
    """`decoder` (2 * hidden -> vocab, with its bias) over chunks of `chunk_size_lm_head` positions. The separate
    `bias` parameter is kept for the checkpoint layout; the logits do not use it."""

    def __init__(self, config):
        super().__init__()
        self.chunk_size_lm_head, self.seq_len_dim = config.chunk_size_lm_head, 1
        self.decoder = nn.Linear(2 * config.hidden_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states):
        return apply_in_chunks(self.decoder, self.chunk_size_lm_head, self.seq_len_dim, hidden_states)


class _LMHeadModel(OutputEmbeddings, ReformerPreTrainedModel):
    lm_bias_follows = True

    def __init__(self, config):
        super().__init__(config)
        self.reformer = ReformerModel(config)
        self.lm_head = ReformerOnlyLMHead(config)
        self.post_init()


class ReformerModelWithLMHead(_LMHeadModel, GenerationMixin):
    """Causal language model (needs is_decoder=True and no chunks after the current one)."""

    def __init__(self, config: ReformerConfig):
        if not config.is_decoder:
            raise ConfigError("ReformerModelWithLMHead needs config.is_decoder=True (causal attention).")
        for kind in set(config.attn_layers):
            if getattr(config, f"{kind}_num_chunks_after", 0):
                raise ConfigError(f"A causal Reformer cannot look at later chunks: set {kind}_num_chunks_after=0.")
        super().__init__(config)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, inputs_embeds=None, num_hashes=None,
                past_buckets_states=None, use_cache=None, output_hidden_states=None, output_attentions=None,
                return_dict=None, labels=None, logits_to_keep=0, **kwargs):
        out = _encode(self, locals(), past_buckets_states=past_buckets_states, use_cache=use_cache)
        logits = self.lm_head(keep_last_logits(out.last_hidden_state, logits_to_keep))
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels, kwargs.get("num_items_in_batch"))
        return pack(ReformerModelWithLMHeadOutput, return_dict, self.config, loss=loss, logits=logits,
                    past_buckets_states=out.past_buckets_states, hidden_states=out.hidden_states,
                    attentions=out.attentions)

    # ------------------------------------------------------------------ generation over the bucket/state cache
    def _cache_argument(self) -> str:
        return "past_buckets_states"

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, batch_size, max_cache_length):
        if generation_config.use_cache is False or model_kwargs.get("past_buckets_states") is not None:
            return
        if generation_config.cache_implementation not in (None, "dynamic"):
            raise ConfigError(f"cache_implementation={generation_config.cache_implementation!r}: Reformer decodes "
                              f"with its own cache of buckets and states; leave cache_implementation unset.")
        model_kwargs["past_buckets_states"] = ReformerDynamicCache()

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, past_buckets_states=None,
                                      use_cache=None, num_hashes=None, attention_mask=None, **kwargs):
        """The whole prompt first, then only the newest token; no attention mask (the cache holds no padding)."""
        if kwargs.get("inputs_embeds") is not None:
            raise ConfigError("Reformer generates from input_ids only; pass the prompt's token ids, not inputs_embeds.")
        if past_buckets_states is not None and len(past_buckets_states):
            input_ids = input_ids[:, -1:]
        inputs = {"input_ids": input_ids, "past_buckets_states": past_buckets_states, "use_cache": use_cache,
                  "num_hashes": num_hashes}
        for name in ("output_attentions", "output_hidden_states"):
            if kwargs.get(name) is not None:
                inputs[name] = kwargs[name]
        return inputs


class ReformerForMaskedLM(_LMHeadModel):
    """Masked language model (needs is_decoder=False: attention in both directions)."""

    def __init__(self, config: ReformerConfig):
        if config.is_decoder:
            raise ConfigError("ReformerForMaskedLM needs config.is_decoder=False (attention in both directions).")
        super().__init__(config)

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, inputs_embeds=None, num_hashes=None,
                labels=None, output_hidden_states=None, output_attentions=None, return_dict=None, **kwargs):
        out = _encode(self, locals(), use_cache=False)
        logits = self.lm_head(out.last_hidden_state)
        return pack(MaskedLMOutput, return_dict, self.config, loss=token_loss(logits, labels), logits=logits,
                    hidden_states=out.hidden_states, attentions=out.attentions)


class ReformerClassificationHead(ClassificationHead):
    """dropout, dense (2 * hidden -> hidden), tanh, dropout, out_proj on the first position."""

    def __init__(self, config):
        super().__init__(2 * config.hidden_size, config.hidden_size, config.num_labels, head_dropout_prob(config))

    def forward(self, hidden_states):
        return super().forward(hidden_states[:, 0])


class ReformerForSequenceClassification(ReformerPreTrainedModel):
    def __init__(self, config: ReformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.reformer = ReformerModel(config)
        self.classifier = ReformerClassificationHead(config)
        self.post_init()

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, inputs_embeds=None, num_hashes=None,
                labels=None, output_hidden_states=None, output_attentions=None, return_dict=None, **kwargs):
        out = _encode(self, locals(), use_cache=False)
        logits = self.classifier(out.last_hidden_state)
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return pack(SequenceClassifierOutput, return_dict, self.config, loss=loss, logits=logits,
                    hidden_states=out.hidden_states, attentions=out.attentions)


class ReformerForQuestionAnswering(ReformerPreTrainedModel):
    def __init__(self, config: ReformerConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.reformer = ReformerModel(config)
        self.qa_outputs = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, position_ids=None, attention_mask=None, inputs_embeds=None, num_hashes=None,
                start_positions=None, end_positions=None, output_hidden_states=None, output_attentions=None,
                return_dict=None, **kwargs):
        out = _encode(self, locals(), use_cache=False)
        start, end = span_logits(self.qa_outputs(out.last_hidden_state))
        return pack(QuestionAnsweringModelOutput, return_dict, self.config,
                    loss=span_loss(start, end, start_positions, end_positions), start_logits=start, end_logits=end,
                    hidden_states=out.hidden_states, attentions=out.attentions)


__all__ = ["ReformerConfig", "ReformerModel", "ReformerModelOutput", "ReformerModelWithLMHead",
           "ReformerForMaskedLM", "ReformerForSequenceClassification", "ReformerForQuestionAnswering",
           "ReformerDynamicCache", "ReformerPreTrainedModel"]
