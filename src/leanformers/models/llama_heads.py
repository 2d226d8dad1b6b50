"""Task heads of the Llama family (Llama, Mistral, Qwen2): causal LM, sequence and token classification, and
extractive question answering, over llama.py's LlamaModel."""

from __future__ import annotations

from torch import nn

from ..generation.utils import GenerationMixin
from ..layers import (causal_lm_loss, classifier_dropout_prob, few_rows_linear, keep_last_logits, last_token_logits,
                      sequence_classification_loss, span_logits, span_loss, token_loss)
from ..outputs import (CausalLMOutputWithPast, QuestionAnsweringModelOutput, SequenceClassifierOutputWithPast,
                       TokenClassifierOutput)
from .gpt2 import CausalLMHead, base_inputs, check_kwargs, finish
from .llama import LlamaConfig, LlamaModel, LlamaPreTrainedModel, MistralConfig, Qwen2Config

__all__ = [f"{family}{name}" for family in ("Llama", "Mistral", "Qwen2")
           for name in ("Config", "PreTrainedModel", "Model", "ForCausalLM", "ForSequenceClassification",
                        "ForTokenClassification", "ForQuestionAnswering")]

_BASE_INPUTS = ("input_ids", "attention_mask", "position_ids", "past_key_values", "inputs_embeds", "use_cache",
                "output_attentions", "output_hidden_states", "cache")


class _LlamaHead(LlamaPreTrainedModel):
    """Base of the task heads: holds the base model (class `base_class`) under `base_model_prefix`."""

    base_class = LlamaModel

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        setattr(self, self.base_model_prefix, type(self).base_class(config))

    def _run_base(self, values: dict):
        return self.base_model(**base_inputs(values, _BASE_INPUTS))


class LlamaForCausalLM(CausalLMHead, _LlamaHead, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _supports_compiled_decoding = True  # generation/compiled.py: its forward takes a SlotCache and a 4-D mask

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.vocab_size, self.lm_head = config.vocab_size, nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, logits_to_keep=0, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self._run_base(locals())
        logits = few_rows_linear(keep_last_logits(out.last_hidden_state, logits_to_keep), self.lm_head)
        loss = None if labels is None else causal_lm_loss(logits, labels, kwargs.get("num_items_in_batch"))
        return finish(CausalLMOutputWithPast(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions), return_dict, self.config)


class LlamaForSequenceClassification(_LlamaHead):
    """Classifies a sequence by the logits of its last non-padding token."""

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.score = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self._run_base(locals())
        logits = last_token_logits(self.score(out.last_hidden_state), input_ids, self.config.pad_token_id)
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return finish(SequenceClassifierOutputWithPast(
            loss=loss, logits=logits, past_key_values=out.past_key_values, hidden_states=out.hidden_states,
            attentions=out.attentions), return_dict, self.config)


class LlamaForTokenClassification(_LlamaHead):
    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.dropout = nn.Dropout(classifier_dropout_prob(config))
        self.score = nn.Linear(config.hidden_size, config.num_labels,
                               bias=getattr(config, "token_classification_bias", True))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self._run_base(locals())
        logits = self.score(self.dropout(out.last_hidden_state))
        return finish(TokenClassifierOutput(loss=token_loss(logits, labels), logits=logits,
                                            hidden_states=out.hidden_states, attentions=out.attentions),
                      return_dict, self.config)


class LlamaForQuestionAnswering(_LlamaHead):
    base_model_prefix = "transformer"  # the name older Llama QA checkpoints use

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        check_kwargs(self, kwargs)
        out = self._run_base(locals())
        start_logits, end_logits = span_logits(self.qa_outputs(out.last_hidden_state))
        return finish(QuestionAnsweringModelOutput(
            loss=span_loss(start_logits, end_logits, start_positions, end_positions), start_logits=start_logits,
            end_logits=end_logits, hidden_states=out.hidden_states, attentions=out.attentions), return_dict,
            self.config)


# ---------------------------------------------------------------------- Mistral and Qwen2: same code, own names
class MistralPreTrainedModel(LlamaPreTrainedModel):
    config_class = MistralConfig


class MistralModel(LlamaModel):
    config_class = MistralConfig


class MistralForCausalLM(LlamaForCausalLM):
    config_class, base_class = MistralConfig, MistralModel


class MistralForSequenceClassification(LlamaForSequenceClassification):
    config_class, base_class = MistralConfig, MistralModel


class MistralForTokenClassification(LlamaForTokenClassification):
    config_class, base_class = MistralConfig, MistralModel


class MistralForQuestionAnswering(LlamaForQuestionAnswering):
    config_class, base_class, base_model_prefix = MistralConfig, MistralModel, "model"


class Qwen2PreTrainedModel(LlamaPreTrainedModel):
    config_class = Qwen2Config


class Qwen2Model(LlamaModel):
    config_class = Qwen2Config


class Qwen2ForCausalLM(LlamaForCausalLM):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen2ForSequenceClassification(LlamaForSequenceClassification):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen2ForTokenClassification(LlamaForTokenClassification):
    config_class, base_class = Qwen2Config, Qwen2Model


class Qwen2ForQuestionAnswering(LlamaForQuestionAnswering):
    config_class, base_class = Qwen2Config, Qwen2Model
