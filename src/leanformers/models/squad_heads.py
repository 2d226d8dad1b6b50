"""The beam-search SQuAD question-answering head of XLNet and XLM, and the sequence summary of their classifiers.

Model-agnostic: the modules read `hidden_size` and `layer_norm_eps` from the config and work on the last hidden
states. The head's three parts are named like the checkpoint keys: `start_logits.dense`,
`end_logits.dense_0 / LayerNorm / dense_1` and `answer_class.dense_0 / dense_1`. XLM keeps them inside a
`SQuADHead` (under `qa_outputs`); XLNet keeps them on the model itself and calls `squad_fields` with the model as
the `head`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..heads import SequenceSummary
from ..outputs import ModelOutput

__all__ = ["SequenceSummary", "PoolerStartLogits", "PoolerEndLogits", "PoolerAnswerClass", "SQuADHead",
           "SquadHeadOutput", "squad_fields"]


class SquadHeadOutput(ModelOutput):
    """The loss (with labels) or the beams: top `start_n_top` start probabilities and positions, for each of them the
    top `end_n_top` end probabilities and positions (flattened to start_n_top * end_n_top), and the answerability
    logit `cls_logits`. The `*_log_probs` fields hold softmax probabilities, as in Transformers."""

    loss: torch.Tensor | None = None
    start_top_log_probs: torch.Tensor | None = None
    start_top_index: torch.LongTensor | None = None
    end_top_log_probs: torch.Tensor | None = None
    end_top_index: torch.LongTensor | None = None
    cls_logits: torch.Tensor | None = None


def _mask_invalid(logits, p_mask):
    """Push the positions where p_mask is 1 (question, special tokens) far below every other logit."""
    if p_mask is None:
        return logits
    big = 65500 if p_mask.dtype == torch.float16 else 1e30
    return logits * (1 - p_mask) - big * p_mask


def _gather_positions(hidden, positions):
    """hidden (batch, seq, hidden) at one position per row -> (batch, 1, hidden)."""
    return hidden.gather(-2, positions[:, None, None].expand(-1, -1, hidden.shape[-1]))


class PoolerStartLogits(nn.Module):
    """One start logit per position."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states, p_mask=None):
        return _mask_invalid(self.dense(hidden_states).squeeze(-1), p_mask)


class PoolerEndLogits(nn.Module):
    """One end logit per position, given the start: the gold `start_positions`, or `start_states` aligned with
    `hidden_states` (beam search passes (batch, seq, beams, hidden) for both)."""

    def __init__(self, config):
        super().__init__()
        self.dense_0 = nn.Linear(config.hidden_size * 2, config.hidden_size)
        self.activation = nn.Tanh()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dense_1 = nn.Linear(config.hidden_size, 1)

    def forward(self, hidden_states, start_states=None, start_positions=None, p_mask=None):
        if start_positions is not None:
            start_states = _gather_positions(hidden_states, start_positions).expand_as(hidden_states)
        elif start_states is None:
            raise ValueError("PoolerEndLogits needs start_states or start_positions.")
        x = self.activation(self.dense_0(torch.cat([hidden_states, start_states], dim=-1)))
        return _mask_invalid(self.dense_1(self.LayerNorm(x)).squeeze(-1), p_mask)


class PoolerAnswerClass(nn.Module):
    """The answerability logit from the start state and the state of the `cls_index` token (default: the last)."""

    def __init__(self, config):
        super().__init__()
        self.dense_0 = nn.Linear(config.hidden_size * 2, config.hidden_size)
        self.activation = nn.Tanh()
        self.dense_1 = nn.Linear(config.hidden_size, 1, bias=False)

    def forward(self, hidden_states, start_states=None, start_positions=None, cls_index=None):
        if start_positions is not None:
            start_states = _gather_positions(hidden_states, start_positions).squeeze(-2)  # (batch, hidden)
        elif start_states is None:
            raise ValueError("PoolerAnswerClass needs start_states or start_positions.")
        cls_state = hidden_states[:, -1] if cls_index is None else _gather_positions(hidden_states, cls_index)[:, 0]
        x = self.activation(self.dense_0(torch.cat([start_states, cls_state], dim=-1)))
        return self.dense_1(x).squeeze(-1)


def _flat(x):
    """Labels given as (batch, 1) -> (batch,)."""
    return x.squeeze(-1) if x is not None and x.dim() > 1 else x


def _squad_loss(head, hidden, start_logits, start_positions, end_positions, cls_index, is_impossible, p_mask):
    """Mean of the start and end cross-entropies (end logits from the gold start), plus half the answerability BCE
    when both `cls_index` and `is_impossible` are given."""
    start_positions, end_positions = _flat(start_positions), _flat(end_positions)
    cls_index, is_impossible = _flat(cls_index), _flat(is_impossible)
    end_logits = head.end_logits(hidden, start_positions=start_positions, p_mask=p_mask)
    loss = (F.cross_entropy(start_logits, start_positions) + F.cross_entropy(end_logits, end_positions)) / 2
    if cls_index is not None and is_impossible is not None:
        cls_logits = head.answer_class(hidden, start_positions=start_positions, cls_index=cls_index)
        loss = loss + 0.5 * F.binary_cross_entropy_with_logits(cls_logits, is_impossible.to(cls_logits.dtype))
    return loss


def _squad_beams(head, hidden, start_logits, start_n_top, end_n_top, cls_index, p_mask) -> dict:
    """The top start positions, the top end positions for each, and the answerability logit."""
    batch, seq, size = hidden.shape
    start_probs = F.softmax(start_logits, dim=-1)  # (batch, seq)
    start_top_probs, start_top_index = start_probs.topk(start_n_top, dim=-1)  # (batch, start_n_top)
    start_states = hidden.gather(-2, start_top_index[..., None].expand(-1, -1, size))  # (batch, start_n_top, hidden)
    start_states = start_states[:, None].expand(-1, seq, -1, -1)  # (batch, seq, start_n_top, hidden)
    end_logits = head.end_logits(hidden[:, :, None].expand_as(start_states), start_states=start_states,
                                 p_mask=None if p_mask is None else p_mask[..., None])  # (batch, seq, start_n_top)
    end_top_probs, end_top_index = F.softmax(end_logits, dim=1).topk(end_n_top, dim=1)  # (batch, end_n_top, start)
    # the answerability reads the start as the probability-weighted mean of the hidden states
    weighted_start = torch.einsum("blh,bl->bh", hidden, start_probs)
    cls_logits = head.answer_class(hidden, start_states=weighted_start, cls_index=cls_index)
    return {"start_top_log_probs": start_top_probs, "start_top_index": start_top_index,
            "end_top_log_probs": end_top_probs.reshape(-1, start_n_top * end_n_top),
            "end_top_index": end_top_index.reshape(-1, start_n_top * end_n_top), "cls_logits": cls_logits}


def squad_fields(head, hidden_states, start_n_top: int, end_n_top: int, start_positions=None, end_positions=None,
                 cls_index=None, is_impossible=None, p_mask=None) -> dict:
    """The SQuAD head over `hidden_states` (batch, seq, hidden) using `head`'s start_logits / end_logits /
    answer_class modules: {"loss"} when both start and end positions are given, else the beam fields."""
    start_logits = head.start_logits(hidden_states, p_mask=p_mask)
    if start_positions is not None and end_positions is not None:
        return {"loss": _squad_loss(head, hidden_states, start_logits, start_positions, end_positions, cls_index,
                                    is_impossible, p_mask)}
    return _squad_beams(head, hidden_states, start_logits, start_n_top, end_n_top, cls_index, p_mask)


class SQuADHead(nn.Module):
    """Start logits, end logits given a start, and the answerability class; `start_n_top` x `end_n_top` beams at
    inference, the span (and answerability) loss in training."""

    def __init__(self, config):
        super().__init__()
        self.start_n_top, self.end_n_top = config.start_n_top, config.end_n_top
        self.start_logits = PoolerStartLogits(config)
        self.end_logits = PoolerEndLogits(config)
        self.answer_class = PoolerAnswerClass(config)

    def forward(self, hidden_states, start_positions=None, end_positions=None, cls_index=None, is_impossible=None,
                p_mask=None, return_dict=False):
        fields = squad_fields(self, hidden_states, self.start_n_top, self.end_n_top, start_positions, end_positions,
                              cls_index, is_impossible, p_mask)
        output = SquadHeadOutput(**fields)
        return output if return_dict else output.to_tuple()
