"""DeBERTa-v2 and v3: DeBERTa (deberta.py) with separate query/key/value projections (`share_att_key` reuses them
for the positions), log-bucketed relative positions (`position_buckets`), an optional LayerNorm over the position
table (`norm_rel_ebd`), an optional convolution beside the first layer (`conv_kernel_size`), and a multiple-choice
head."""

from __future__ import annotations

from torch import nn

from ..disentangled_attention import position_window
from ..heads import MultipleChoice
from ..layers import activation, split_heads
from .deberta import DebertaConfig, DebertaEncoder, DebertaModel, DebertaPreTrainedModel, DisentangledSelfAttention
from .deberta_heads import (ContextPooler, DebertaForMaskedLM, DebertaForQuestionAnswering,
                            DebertaForSequenceClassification, DebertaForTokenClassification, _DebertaHead, cls_dropout)


class DebertaV2Config(DebertaConfig):
    model_type = "deberta-v2"
    defaults = dict(DebertaConfig.defaults, vocab_size=128100, hidden_size=1536, num_hidden_layers=24,
                    num_attention_heads=24, intermediate_size=6144)


class DebertaV2SelfAttention(DisentangledSelfAttention):
    """`query_proj`, `key_proj`, `value_proj` (with biases); positions through `pos_key_proj` (c2p) and
    `pos_query_proj` (p2c), or through the content projections when share_att_key."""

    def head_size(self, config) -> int:
        return getattr(config, "attention_head_size", None) or config.hidden_size // config.num_attention_heads

    def init_projections(self, config):
        width = self.num_heads * self.head_dim
        self.query_proj = nn.Linear(config.hidden_size, width)
        self.key_proj = nn.Linear(config.hidden_size, width)
        self.value_proj = nn.Linear(config.hidden_size, width)
        self.share_att_key = getattr(config, "share_att_key", False)

    def init_position_projections(self, config):
        width = self.num_heads * self.head_dim
        self.position_buckets = getattr(config, "position_buckets", -1)
        self.pos_ebd_size = self.position_buckets if self.position_buckets > 0 else self.max_relative_positions
        if not self.share_att_key and "c2p" in self.terms:
            self.pos_key_proj = nn.Linear(config.hidden_size, width)
        if not self.share_att_key and "p2c" in self.terms:
            self.pos_query_proj = nn.Linear(config.hidden_size, width)

    def project(self, hidden):
        return tuple(split_heads(proj(hidden), self.num_heads)
                     for proj in (self.query_proj, self.key_proj, self.value_proj))  # (batch, heads, seq, head_dim)

    def position_tables(self, window):
        key_proj = self.key_proj if self.share_att_key else getattr(self, "pos_key_proj", None)
        query_proj = self.query_proj if self.share_att_key else getattr(self, "pos_query_proj", None)
        pos_key = self._table(key_proj, window) if "c2p" in self.terms else None
        pos_query = self._table(query_proj, window) if "p2c" in self.terms else None
        return pos_key, pos_query


class ConvLayer(nn.Module):
    """A convolution over the embedded sequence, added to the first layer's output: conv (padding positions
    zeroed) -> dropout -> conv_act, residual add, LayerNorm, padding positions zeroed."""

    def __init__(self, config):
        super().__init__()
        kernel = config.conv_kernel_size
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel, padding=(kernel - 1) // 2,
                              groups=getattr(config, "conv_groups", 1))
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.act = activation(getattr(config, "conv_act", "tanh"))

    def forward(self, hidden, residual, attention_mask=None):
        out = self.conv(hidden.transpose(1, 2)).transpose(1, 2)  # (batch, seq, hidden)
        keep = None if attention_mask is None else attention_mask[..., None].to(out.dtype)
        if keep is not None:
            out = out * keep
        out = self.LayerNorm(residual + self.act(self.dropout(out)))
        return out if keep is None else out * keep


class DebertaV2Encoder(DebertaEncoder):
    """DeBERTa's encoder with `position_buckets` rows each way in `rel_embeddings` (when > 0), its `LayerNorm`
    (norm_rel_ebd="layer_norm") and `conv` (conv_kernel_size > 0)."""

    self_attention_class = DebertaV2SelfAttention

    def __init__(self, config):
        super().__init__(config)
        self.position_buckets = getattr(config, "position_buckets", -1)
        norms = [part.strip() for part in str(getattr(config, "norm_rel_ebd", "none")).lower().split("|")]
        if "layer_norm" in norms:
            self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.conv = ConvLayer(config) if getattr(config, "conv_kernel_size", 0) > 0 else None

    def table_rows(self, config) -> int:
        buckets = getattr(config, "position_buckets", -1)
        return 2 * (buckets if buckets > 0 else self.max_relative_positions)

    def relative_window(self, seq: int, device):
        """(the rows of the position table the layers read, normalised when configured; the (seq, seq) bucketed
        index of each query/key pair into them)."""
        span = self.position_buckets if self.position_buckets > 0 else self.max_relative_positions
        rows, index = position_window(seq, span, self.position_buckets, self.max_relative_positions, device)
        window = self.rel_embeddings.weight[rows]
        return (self.LayerNorm(window) if hasattr(self, "LayerNorm") else window), index

    def after_first_layer(self, embedded, hidden, attention_mask):
        return hidden if self.conv is None else self.conv(embedded, hidden, attention_mask)


class DebertaV2PreTrainedModel(DebertaPreTrainedModel):
    config_class = DebertaV2Config
    _keys_to_ignore_on_load_unexpected = (*DebertaPreTrainedModel._keys_to_ignore_on_load_unexpected,
                                          r"mask_predictions\.")


class DebertaV2Model(DebertaModel, DebertaV2PreTrainedModel):
    encoder_class = DebertaV2Encoder


class DebertaV2ForMaskedLM(DebertaForMaskedLM, DebertaV2PreTrainedModel):
    encoder_class = DebertaV2Model


class DebertaV2ForSequenceClassification(DebertaForSequenceClassification, DebertaV2PreTrainedModel):
    encoder_class = DebertaV2Model


class DebertaV2ForTokenClassification(DebertaForTokenClassification, DebertaV2PreTrainedModel):
    encoder_class = DebertaV2Model


class DebertaV2ForQuestionAnswering(DebertaForQuestionAnswering, DebertaV2PreTrainedModel):
    encoder_class = DebertaV2Model


class DebertaV2ForMultipleChoice(MultipleChoice, _DebertaHead, DebertaV2PreTrainedModel):
    """Inputs are (batch, num_choices, seq); one score per choice from `pooler`, dropout and `classifier`."""

    encoder_class = DebertaV2Model

    def add_head(self, config):
        self.num_labels = config.num_labels
        self.pooler = ContextPooler(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.dropout = cls_dropout(config)

    def choice_logits(self, out):
        return self.classifier(self.dropout(self.pooler(out.last_hidden_state)))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        return self.choice_output(locals())
