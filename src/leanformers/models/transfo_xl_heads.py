"""Transformer-XL task heads: the language model (adaptive softmax, `generate()` carrying the memory) and the
sequence classifier."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..generation.utils import GenerationMixin
from ..heads import finish
from ..layers import sequence_classification_loss
from ..outputs import ModelOutput
from .transfo_xl import (ProjectedAdaptiveLogSoftmax, TransfoXLConfig, TransfoXLModel, TransfoXLModelOutput,
                         TransfoXLPreTrainedModel)

__all__ = ["TransfoXLConfig", "TransfoXLModel", "TransfoXLLMHeadModel", "TransfoXLForSequenceClassification",
           "TransfoXLModelOutput", "TransfoXLLMHeadModelOutput", "TransfoXLSequenceClassifierOutputWithPast"]


class TransfoXLLMHeadModelOutput(ModelOutput):
    losses: torch.Tensor | None = None
    prediction_scores: torch.Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None
    loss: torch.Tensor | None = None

    @property
    def logits(self):
        """The log-probabilities (`prediction_scores`), which generation reads as logits."""
        return self.prediction_scores


class TransfoXLSequenceClassifierOutputWithPast(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor = None
    mems: list | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class TransfoXLLMHeadModel(TransfoXLPreTrainedModel, GenerationMixin):
    """Transformer-XL with the adaptive softmax: `prediction_scores` are log-probabilities; with labels, `losses`
    holds each position's loss (token order) and `loss` their mean over the counted positions."""

    def __init__(self, config: TransfoXLConfig):
        super().__init__(config)
        if config.sample_softmax > 0:
            raise ConfigError(f"sample_softmax={config.sample_softmax} (a sampled softmax) is not supported; set "
                              f"sample_softmax=-1 to use the full adaptive softmax.")
        self.sample_softmax = config.sample_softmax
        self.trainer_compatible = getattr(config, "trainer_compatible", False)
        self.transformer = TransfoXLModel(config)
        self.crit = ProjectedAdaptiveLogSoftmax(config)
        self.post_init()

    def get_output_embeddings(self):
        return self.crit.out_layers[-1]

    def reset_memory_length(self, mem_len: int):
        self.transformer.reset_memory_length(mem_len)

    def resize_token_embeddings(self, new_num_tokens: int | None = None, layer: int = -1):
        """As TransfoXLModel's; the output clusters, tied to the input ones, follow (new biases 0)."""
        if new_num_tokens is not None and not self.config.tie_word_embeddings:
            raise ConfigError("The output clusters are not tied to the input ones (tie_word_embeddings=False), so "
                              "they would keep their old size; tie them or build a model with the new vocabulary.")
        embeddings = super().resize_token_embeddings(new_num_tokens, layer)
        self.crit.cutoffs, self.crit.n_token = list(embeddings.cutoffs), embeddings.n_token
        self.tie_weights()
        with torch.no_grad():
            for out_layer, emb_layer in zip(self.crit.out_layers, embeddings.emb_layers):
                rows = emb_layer.num_embeddings - out_layer.bias.shape[0]  # the bias grows by zeros, or is cut
                out_layer.bias = nn.Parameter(F.pad(out_layer.bias, (0, rows)))
                out_layer.out_features = emb_layer.num_embeddings
        return embeddings

    def init_mems(self, batch_size: int):
        return self.transformer.init_mems(batch_size)

    def forward(self, input_ids=None, mems=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        out = self.transformer(input_ids, mems=mems, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True, **kwargs)
        hidden = out.last_hidden_state
        batch, seq, width = hidden.shape
        losses = loss = None
        if labels is None:
            scores = self.crit(hidden.reshape(-1, width)).view(batch, seq, -1)
        else:
            if labels.shape[1] > 1 and bool((labels[0, 1:] == -100).all()):  # else the mean may be empty (NaN)
                labels = labels.clone()
                labels[0, 1] = self.config.eos_token_id
            # position t predicts label t + 1; only the losses are computed, no full distribution
            losses = self.crit(hidden[:, :-1].reshape(-1, width), labels[:, 1:].reshape(-1)).view(batch, seq - 1)
            loss, scores = losses[losses != 0].mean(), ()
        result = TransfoXLLMHeadModelOutput(losses=losses, prediction_scores=scores, mems=out.mems,
                                            hidden_states=out.hidden_states, attentions=out.attentions, loss=loss)
        if not (return_dict if return_dict is not None else self.config.use_return_dict):
            fields = result.to_tuple()
            if getattr(self.config, "trainer_compatible", False) and loss is not None:  # the loss first
                return (loss, scores, losses, *fields[2:-1])
            return fields
        return result

    # ---- generation: the memory is the cache; after the prompt only the newest token is fed ----
    def generate(self, *args, **kwargs):
        """GenerationMixin.generate; meanwhile the position projections are made once per key length."""
        with self.transformer.reusing_positions():
            return super().generate(*args, **kwargs)

    def _cache_argument(self) -> str:
        return "mems"

    def _prepare_cache_for_generation(self, generation_config, model_kwargs, batch_size, max_cache_length):
        """A memory given to generate() is repeated for the beams / returned sequences of each row."""
        mems = model_kwargs.get("mems")
        rows = batch_size * max(generation_config.num_beams, generation_config.num_return_sequences)
        if mems is not None and mems[0].shape[1] != rows:
            model_kwargs["mems"] = [m.repeat_interleave(rows // m.shape[1], dim=1) for m in mems]

    def _prefill(self, input_ids, generation_config, model_kwargs, is_first_iteration=True):
        inputs = self.prepare_inputs_for_generation(input_ids, is_first_iteration=True, **model_kwargs)
        return self(**inputs, return_dict=True)

    def prepare_inputs_for_generation(self, input_ids, next_sequence_length=None, mems=None, inputs_embeds=None,
                                      is_first_iteration=False, **kwargs):
        if inputs_embeds is not None:
            raise ConfigError("Transformer-XL generates from input_ids only; pass the prompt as input_ids.")
        carried = mems is not None and not is_first_iteration
        inputs = {"input_ids": input_ids[:, -1:] if carried else input_ids, "mems": mems}
        for key in ("head_mask", "output_attentions", "output_hidden_states", "use_cache"):
            if key in kwargs:
                inputs[key] = kwargs[key]
        return inputs

    @staticmethod
    def _reorder_cache(mems, beam_idx):
        return [memory.index_select(1, beam_idx.to(memory.device)) for memory in mems]

    def _contrastive_search(self, *args, **kwargs):
        raise ConfigError("Contrastive search is not supported for Transformer-XL (its memory is not a key/value "
                          "cache); use greedy, sampling or beam search.")


class TransfoXLForSequenceClassification(TransfoXLPreTrainedModel):
    """Classifies a sequence by the logits at the token before its first padding token (the last one if none)."""

    def __init__(self, config: TransfoXLConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = TransfoXLModel(config)
        self.score = nn.Linear(config.d_embed, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, mems=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None, **kwargs):
        if self.config.d_embed != self.config.d_model:
            raise ConfigError(f"The classifier reads d_embed={self.config.d_embed} features but the model outputs "
                              f"d_model={self.config.d_model}; use a config with d_embed == d_model.")
        out = self.transformer(input_ids, mems=mems, head_mask=head_mask, inputs_embeds=inputs_embeds,
                               output_attentions=output_attentions, output_hidden_states=output_hidden_states,
                               return_dict=True, **kwargs)
        logits = self.score(out.last_hidden_state)
        batch = logits.shape[0]
        pad = self.config.pad_token_id
        if pad is None and batch > 1:
            raise ConfigError("Classifying a batch needs config.pad_token_id to find each row's last token.")
        last = -1 if pad is None or input_ids is None else (input_ids == pad).long().argmax(-1) - 1
        pooled = logits[torch.arange(batch, device=logits.device), last]
        loss = sequence_classification_loss(self.config, pooled, labels) if labels is not None else None
        result = TransfoXLSequenceClassifierOutputWithPast(loss=loss, logits=pooled, mems=out.mems,
                                                           hidden_states=out.hidden_states, attentions=out.attentions)
        return finish(result, return_dict, self.config)
