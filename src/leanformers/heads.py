"""Task-head logic shared across architectures: forward() argument handling, the heads of the BERT-style encoders
(BERT, RoBERTa, ELECTRA, ALBERT, DistilBERT) and of the GPT-style decoders (GPT-2, OpenAI GPT, CTRL), and the few head
modules whose weight names are the same in every family that uses them.

Each model file still declares its head classes under the Transformers names and creates the layers whose names
differ between families, so attribute paths stay the checkpoint keys.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .activations import activation_module
from .errors import ConfigError
from .layers import (causal_lm_loss, few_rows_linear, keep_last_logits, last_token_logits, output_flags,
                     sequence_classification_loss, span_logits, span_loss, token_loss)
from .outputs import (CausalLMOutputWithCrossAttentions, MaskedLMOutput, MultipleChoiceModelOutput,
                      QuestionAnsweringModelOutput, SequenceClassifierOutput, TokenClassifierOutput, as_tuple, extras,
                      pack)

# ---------------------------------------------------------------------- forward() arguments and results
# accepted and ignored: cache_position (positions come from the cache), num_items_in_batch (read by the losses),
# use_cache (generation passes it to every model, even those without a cache)
_TOLERATED_KWARGS = ("cache_position", "num_items_in_batch", "use_cache")


def check_kwargs(model, kwargs: dict):
    """Reject keyword arguments a forward does not know (a typo must not be ignored silently)."""
    unknown = sorted(k for k in kwargs if k not in _TOLERATED_KWARGS)
    if unknown:
        raise TypeError(f"{type(model).__name__}.forward() got unexpected keyword arguments {unknown}.")


def base_inputs(values: dict, names: tuple) -> dict:
    """Keyword arguments for the base model, picked by name from a head's forward() arguments (its locals())."""
    return {**{name: values[name] for name in names if name in values}, "return_dict": True}


def start_decoder(model, kwargs: dict, input_ids, inputs_embeds, output_attentions, output_hidden_states):
    """The checks a GPT-style base model's forward() starts with -> (want attention weights, want hidden states):
    known keyword arguments, exactly one of token ids and vectors, output flags defaulting to the config's."""
    check_kwargs(model, kwargs)
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
    return output_flags(model.config, output_attentions, output_hidden_states)


def finish(output, return_dict, config):
    """The output object, or its tuple when return_dict (or the config's default) is false."""
    return output if (return_dict if return_dict is not None else config.use_return_dict) else as_tuple(output, config)


# ---------------------------------------------------------------------- modules named alike in every family
class SequenceSummary(nn.Module):
    """One vector per sequence (last, first, mean or the `cls_index` token), optionally projected: the
    multiple-choice head of the GPT double-heads models and of ELECTRA. Its only weights are `summary.weight/bias`."""

    def __init__(self, config):
        super().__init__()
        self.summary_type = getattr(config, "summary_type", "last")
        if self.summary_type not in ("last", "first", "mean", "cls_index"):
            raise ConfigError(f"summary_type={self.summary_type!r} is not implemented; use 'last', 'first', 'mean' "
                              f"or 'cls_index'.")
        self.summary = nn.Identity()
        if getattr(config, "summary_use_proj", False):
            to_labels = getattr(config, "summary_proj_to_labels", False) and config.num_labels > 0
            self.summary = nn.Linear(config.hidden_size, config.num_labels if to_labels else config.hidden_size)
        name = getattr(config, "summary_activation", None)
        self.activation = activation_module(name) if name else nn.Identity()
        first, last = getattr(config, "summary_first_dropout", 0), getattr(config, "summary_last_dropout", 0)
        self.first_dropout = nn.Dropout(first) if first and first > 0 else nn.Identity()
        self.last_dropout = nn.Dropout(last) if last and last > 0 else nn.Identity()

    def forward(self, hidden_states, cls_index=None):
        if self.summary_type == "last":
            output = hidden_states[:, -1]
        elif self.summary_type == "first":
            output = hidden_states[:, 0]
        elif self.summary_type == "mean":
            output = hidden_states.mean(dim=1)
        else:  # cls_index: the token at cls_index (default: the last one) of each sequence
            if cls_index is None:
                cls_index = torch.full_like(hidden_states[..., :1, :], hidden_states.shape[-2] - 1, dtype=torch.long)
            else:
                cls_index = cls_index[..., None, None].expand(*cls_index.shape, 1, hidden_states.shape[-1])
            output = hidden_states.gather(-2, cls_index).squeeze(-2)
        return self.last_dropout(self.activation(self.summary(self.first_dropout(output))))


class ClassificationHead(nn.Module):
    """dropout -> dense -> activation (tanh unless given) -> dropout -> out_proj over one vector per sequence: the
    sentence classifier of BART-like models; `FirstTokenClassifier` reads it off an encoder's first token."""

    def __init__(self, input_dim: int, inner_dim: int, num_classes: int, dropout: float, act=torch.tanh):
        super().__init__()
        self.dense = nn.Linear(input_dim, inner_dim)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(inner_dim, num_classes)
        self.activation = act

    def forward(self, hidden):
        return self.out_proj(self.dropout(self.activation(self.dense(self.dropout(hidden)))))


class FirstTokenClassifier(ClassificationHead):
    """The classifier of RoBERTa (tanh) and ELECTRA (gelu) over the first token (<s> / [CLS]) of the last layer."""

    def __init__(self, config, act=torch.tanh):
        super().__init__(config.hidden_size, config.hidden_size, config.num_labels, head_dropout_prob(config), act)

    def forward(self, hidden):
        return super().forward(hidden[:, 0])


class OutputEmbeddings:
    """Mixin of the language-model heads (listed before the family's PreTrainedModel): the module at `lm_head_path`
    scores the vocabulary (`lm_scores`) and its `decoder` is the output embeddings. With `lm_bias_follows`,
    set_output_embeddings also makes the new decoder's bias the head's `bias`, as the family's reference does."""

    lm_head_path = "lm_head"
    lm_bias_follows = False

    def get_output_embeddings(self):
        return self.get_submodule(self.lm_head_path).decoder

    def set_output_embeddings(self, new_embeddings):
        head = self.get_submodule(self.lm_head_path)
        head.decoder = new_embeddings
        if self.lm_bias_follows:
            head.bias = new_embeddings.bias

    def lm_scores(self, hidden):
        return self.get_submodule(self.lm_head_path)(hidden)


# ---------------------------------------------------------------------- BERT-style encoder heads
ENCODER_ARGS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds",
                "encoder_hidden_states", "encoder_attention_mask", "past_key_values", "output_attentions",
                "output_hidden_states")
CHOICE_ARGS = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds")


def flatten_choices(args: dict) -> dict:
    """(batch, num_choices, ...) inputs -> (batch * num_choices, ...) for a multiple-choice head."""
    flat = {k: args[k].reshape(-1, *args[k].shape[2:]) for k in CHOICE_ARGS if args.get(k) is not None}
    return {**args, **flat}


def head_dropout_prob(config, field: str = "classifier_dropout") -> float:
    """Dropout before an encoder's classifier: the config's `field`, else hidden_dropout_prob."""
    value = getattr(config, field)
    return value if value is not None else config.hidden_dropout_prob


class EncoderHead:
    """Mixin of the task heads over a BERT-style encoder, listed before the family's PreTrainedModel.

    Builds the encoder at `base_model_prefix` (`build_encoder`), then the head's own layers (`add_head`), then runs
    post_init. The task mixins below give forward() BERT's signature; their `*_output(args)` methods do the work
    from a forward's arguments (its locals()), for the heads whose signature differs.
    """

    encoder_class = None
    pooling = False  # whether the head reads the pooled output (the encoder then builds its pooler)

    def __init__(self, config):
        super().__init__(config)
        setattr(self, self.base_model_prefix, self.build_encoder(config))
        self.add_head(config)
        self.post_init()

    def build_encoder(self, config):
        return self.encoder_class(config, add_pooling_layer=self.pooling)

    def add_head(self, config):
        """The head's own layers (none by default)."""

    def head_dropout(self, config) -> nn.Dropout:
        return nn.Dropout(head_dropout_prob(config))

    def encode(self, args: dict):
        """The encoder's output for a forward's arguments (those it takes, passed by name)."""
        return self.base_model(**{k: args[k] for k in ENCODER_ARGS if k in args}, return_dict=True)

    def head_output(self, output_cls, args: dict, out, **fields):
        """`output_cls` with `fields` and the encoder's hidden states and attentions, as return_dict asks."""
        return pack(output_cls, args["return_dict"], self.config, **fields, **extras(out))


class SequenceClassification(EncoderHead):
    """One label (or score) per sequence: dropout and a linear `classifier` on the pooled output, or the family's
    `classifier_class` module on the last hidden state."""

    classifier_class = None

    @property
    def pooling(self):
        return self.classifier_class is None

    def add_head(self, config):
        self.num_labels = config.num_labels
        if self.classifier_class is not None:
            self.classifier = self.classifier_class(config)
            return
        self.dropout = self.head_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def sequence_logits(self, out):
        if self.classifier_class is not None:
            return self.classifier(out.last_hidden_state)
        return self.classifier(self.dropout(out.pooler_output))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.sequence_output(locals())

    def sequence_output(self, args: dict):
        out = self.encode(args)
        logits, labels = self.sequence_logits(out), args["labels"]
        loss = None if labels is None else sequence_classification_loss(self.config, logits, labels)
        return self.head_output(SequenceClassifierOutput, args, out, loss=loss, logits=logits)


class TokenClassification(EncoderHead):
    """One label per token: dropout and a linear `classifier` on every position."""

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.dropout = self.head_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.token_output(locals())

    def token_output(self, args: dict):
        out = self.encode(args)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        return self.head_output(TokenClassifierOutput, args, out, loss=token_loss(logits, args["labels"]),
                                logits=logits)


class MultipleChoice(EncoderHead):
    """Inputs are (batch, num_choices, seq); one score per choice, by default from dropout and a one-output
    `classifier` on the pooled output (`choice_logits`)."""

    pooling = True

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.dropout = self.head_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, 1)

    def choice_logits(self, out):
        return self.classifier(self.dropout(out.pooler_output))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.choice_output(locals())

    def choice_output(self, args: dict):
        num_choices = (args["input_ids"] if args["input_ids"] is not None else args["inputs_embeds"]).shape[1]
        out = self.encode(flatten_choices(args))
        logits, labels = self.choice_logits(out).view(-1, num_choices), args["labels"]
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return self.head_output(MultipleChoiceModelOutput, args, out, loss=loss, logits=logits)


class QuestionAnswering(EncoderHead):
    """Start and end logits of an answer span from `qa_outputs` on every position (`span_features`)."""

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)

    def span_features(self, out):
        return out.last_hidden_state

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        return self.span_output(locals())

    def span_output(self, args: dict):
        out = self.encode(args)
        start, end = span_logits(self.qa_outputs(self.span_features(out)))
        loss = span_loss(start, end, args["start_positions"], args["end_positions"])
        return self.head_output(QuestionAnsweringModelOutput, args, out, loss=loss, start_logits=start,
                                end_logits=end)


class MaskedLM(EncoderHead):
    """Vocabulary scores at every position (the family's `lm_scores`); cross-entropy on `labels`, -100 ignored."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.masked_lm_output(locals())

    def masked_lm_output(self, args: dict):
        out = self.encode(args)
        logits = self.lm_scores(out.last_hidden_state)
        return self.head_output(MaskedLMOutput, args, out, loss=token_loss(logits, args["labels"]), logits=logits)


class CausalLM(EncoderHead):
    """The encoder run as a decoder (is_decoder=True) with the family's `lm_scores`; the loss predicts each next
    token. The key/value cache of an encoder that keeps one is passed on (none is made when labels are given)."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, encoder_hidden_states=None, encoder_attention_mask=None, labels=None,
                past_key_values=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        args = locals()
        out = self.base_model(**{k: args[k] for k in ENCODER_ARGS}, use_cache=False if labels is not None else
                              use_cache, return_dict=True)
        logits = self.lm_scores(out.last_hidden_state)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        return self.head_output(CausalLMOutputWithCrossAttentions, args, out, loss=loss, logits=logits,
                                past_key_values=out.get("past_key_values"), cross_attentions=out.cross_attentions)


# ---------------------------------------------------------------------- GPT-style decoder heads
DECODER_ARGS = ("input_ids", "past_key_values", "attention_mask", "token_type_ids", "position_ids", "inputs_embeds",
                "use_cache", "output_attentions", "output_hidden_states", "cache")
_PASSED_ON = ("past_key_values", "hidden_states", "attentions", "cross_attentions")


def decoder_output(output_cls, out, return_dict, config, **fields):
    """`output_cls` with `fields` and those of the cache, hidden states and attention weights of the base model's
    output `out` that it has fields for; its tuple unless return_dict (else the config's default)."""
    names = output_cls.__dataclass_fields__  # not dataclasses.fields(): torch.compile reads this one
    passed = {name: getattr(out, name, None) for name in _PASSED_ON if name in names}
    return finish(output_cls(**passed, **fields), return_dict, config)


def _decode(model, args: dict):
    check_kwargs(model, args["kwargs"])
    return model.base_model(**base_inputs(args, DECODER_ARGS))


def causal_lm_output(model, args: dict, output_cls):
    """A decoder LM head's forward() from its arguments (locals()): `lm_head` logits of the kept positions
    (`logits_to_keep`) and the next-token loss on `labels`."""
    out = _decode(model, args)
    logits = few_rows_linear(keep_last_logits(out.last_hidden_state, args["logits_to_keep"]), model.lm_head)
    labels = args["labels"]
    loss = None if labels is None else causal_lm_loss(logits, labels, args["kwargs"].get("num_items_in_batch"))
    return decoder_output(output_cls, out, args["return_dict"], model.config, loss=loss, logits=logits)


def last_token_classifier_output(model, args: dict, score, output_cls):
    """A decoder's sequence-classification forward(): `score` logits at each row's last non-padding token."""
    out = _decode(model, args)
    logits = last_token_logits(score(out.last_hidden_state), args["input_ids"], model.config.pad_token_id)
    labels = args["labels"]
    loss = None if labels is None else sequence_classification_loss(model.config, logits, labels)
    return decoder_output(output_cls, out, args["return_dict"], model.config, loss=loss, logits=logits)


def double_heads_output(model, args: dict, output_cls):
    """A double-heads forward(): `lm_head` logits and the `multiple_choice_head` score read at each choice's
    `mc_token_ids` token, with the LM loss on `labels` and the choice loss on `mc_labels`."""
    out = _decode(model, args)
    hidden = out.last_hidden_state
    lm_logits = model.lm_head(hidden)
    mc_logits = model.multiple_choice_head(hidden, args["mc_token_ids"]).squeeze(-1)
    labels, mc_labels = args["labels"], args["mc_labels"]
    mc_loss = None if mc_labels is None else F.cross_entropy(mc_logits.view(-1, mc_logits.shape[-1]),
                                                              mc_labels.view(-1))
    lm_loss = None if labels is None else causal_lm_loss(lm_logits, labels)
    return decoder_output(output_cls, out, args["return_dict"], model.config, loss=lm_loss, mc_loss=mc_loss,
                          logits=lm_logits, mc_logits=mc_logits)


class DecoderHead:
    """Mixin of the task heads over a GPT-style decoder, listed first among the bases: builds the decoder at
    `base_model_prefix` (`decoder_class`), then the head's layers (`add_head`), then runs post_init. The forward() of
    the mixins below has GPT-2's signature and returns `output_class`; heads with another signature call the
    `*_output` functions above themselves."""

    decoder_class = None
    output_class = None

    def __init__(self, config):
        super().__init__(config)
        setattr(self, self.base_model_prefix, self.decoder_class(config))
        self.add_head(config)
        self.post_init()


class DecoderLM(DecoderHead):
    """Next-token scores from `lm_head` (with a bias when `lm_head_bias`)."""

    lm_head_bias = False

    def add_head(self, config):
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=self.lm_head_bias)

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, logits_to_keep=0, cache=None, **kwargs):
        return causal_lm_output(self, locals(), self.output_class)


class DecoderDoubleHeads(DecoderHead):
    """Language modelling plus a multiple-choice score read at each choice's `mc_token_ids` token."""

    def __init__(self, config):
        config.num_labels = 1  # the choice head scores one number per choice
        super().__init__(config)

    def add_head(self, config):
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.multiple_choice_head = SequenceSummary(config)

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, mc_token_ids=None, labels=None, mc_labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None, cache=None,
                **kwargs):
        return double_heads_output(self, locals(), self.output_class)


class LastTokenClassification(DecoderHead):
    """Classifies a sequence by the logits of its last non-padding token, from a bias-free linear layer named
    `score_name`."""

    score_name = "score"

    def add_head(self, config):
        self.num_labels = config.num_labels
        setattr(self, self.score_name, nn.Linear(config.hidden_size, config.num_labels, bias=False))

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache=None, **kwargs):
        return last_token_classifier_output(self, locals(), getattr(self, self.score_name), self.output_class)
