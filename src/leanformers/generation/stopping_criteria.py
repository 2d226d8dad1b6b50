"""Stopping criteria: functions of (input_ids, scores) -> a bool per row, True when that row is done."""

from __future__ import annotations

import copy
import logging
import time
import warnings

import torch

from ..errors import ConfigError

logger = logging.getLogger("leanformers")


class StoppingCriteria:
    """Base class: `__call__(input_ids, scores, **kwargs) -> BoolTensor (batch,)`."""

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores).")


class MaxLengthCriteria(StoppingCriteria):
    """Done once the sequence (prompt included) has `max_length` tokens."""

    def __init__(self, max_length: int, max_position_embeddings: int | None = None):
        self.max_length = max_length
        self.max_position_embeddings = max_position_embeddings
        self._warned = False

    def __call__(self, input_ids, scores, **kwargs):
        length = input_ids.shape[1]
        done = length >= self.max_length
        limit = self.max_position_embeddings
        if limit is not None and not done and length > limit and not self._warned:
            self._warned = True
            logger.warning(f"The sequence is now longer than the model's max_position_embeddings ({limit}); "
                           f"the model may fail or produce poor results beyond it.")
        return torch.full((input_ids.shape[0],), done, device=input_ids.device, dtype=torch.bool)


class MaxTimeCriteria(StoppingCriteria):
    """Done once `max_time` seconds have passed since `initial_timestamp` (default: creation)."""

    def __init__(self, max_time: float, initial_timestamp: float | None = None):
        self.max_time = max_time
        self.initial_timestamp = time.time() if initial_timestamp is None else initial_timestamp

    def __call__(self, input_ids, scores, **kwargs):
        done = time.time() - self.initial_timestamp > self.max_time
        return torch.full((input_ids.shape[0],), done, device=input_ids.device, dtype=torch.bool)


class EosTokenCriteria(StoppingCriteria):
    """Done when the last token is one of `eos_token_id`."""

    def __init__(self, eos_token_id):
        if not isinstance(eos_token_id, torch.Tensor):
            eos_token_id = torch.tensor([eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id))
        self.eos_token_id = eos_token_id.reshape(-1)

    def __call__(self, input_ids, scores, new_token_length: int = 1, **kwargs):
        if self.eos_token_id.device != input_ids.device:
            self.eos_token_id = self.eos_token_id.to(input_ids.device)
        return torch.isin(input_ids[:, -new_token_length:], self.eos_token_id).any(dim=-1)


class StopStringCriteria(StoppingCriteria):
    """Done when the text ends with one of `stop_strings` reaching into the last token.

    A stop string may span several tokens and may end anywhere inside the last token. Token texts come from the
    tokenizer once (bytes for byte-level and byte-fallback vocabularies, so multi-byte characters split across
    tokens still match); each step only looks at the last few tokens of each row.
    """

    def __init__(self, tokenizer, stop_strings):
        if isinstance(stop_strings, str):
            stop_strings = [stop_strings]
        self.stop_strings = tuple(stop_strings)
        if not self.stop_strings or any(not isinstance(s, str) or not s for s in self.stop_strings):
            raise ConfigError(f"stop_strings has to be a non-empty string or list of strings, got {stop_strings!r}.")
        from .stop_strings import token_texts

        self._texts, as_bytes = token_texts(tokenizer)
        self._empty = b"" if as_bytes else ""
        self._targets = tuple(s.encode("utf-8") if as_bytes else s for s in self.stop_strings)
        self.maximum_token_len = max(len(t) for t in self._targets)

    def __call__(self, input_ids, scores, **kwargs):
        tails = input_ids[:, -self.maximum_token_len:].tolist()
        done = [self._row_matches(row) for row in tails]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _row_matches(self, row: list[int]) -> bool:
        texts, empty = self._texts, self._empty
        last = texts.get(row[-1], empty)
        if not last:
            return False
        for target in self._targets:
            before = empty
            for token in reversed(row[:-1]):  # enough preceding text for the target to start in it
                if len(before) >= len(target) - 1:
                    break
                before = texts.get(token, empty) + before
            text = before + last
            lowest_end = len(before) + 1
            start = text.find(target, max(0, lowest_end - len(target)))
            if start != -1 and start + len(target) >= lowest_end:
                return True
        return False


class ConfidenceCriteria(StoppingCriteria):
    """Done when the probability of the last token falls below `assistant_confidence_threshold`."""

    def __init__(self, assistant_confidence_threshold):
        self.assistant_confidence_threshold = assistant_confidence_threshold

    def __call__(self, input_ids, scores, **kwargs):
        probs = scores[-1].softmax(-1)
        return bool(probs[0, input_ids[0, -1]].item() < self.assistant_confidence_threshold)


class StoppingCriteriaList(list):
    """A row is done when any criterion says so."""

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for criterion in self:
            done = done | criterion(input_ids, scores, **kwargs)
        return done

    @property
    def max_length(self) -> int | None:
        for criterion in self:
            if isinstance(criterion, MaxLengthCriteria):
                return criterion.max_length
        return None


def validate_stopping_criteria(stopping_criteria: StoppingCriteriaList, max_length: int) -> StoppingCriteriaList:
    """A copy of the list with a MaxLengthCriteria added when it has none."""
    found = stopping_criteria.max_length
    out = copy.deepcopy(stopping_criteria)
    if found is not None and found != max_length:
        warnings.warn("You set different `max_length` for stopping criteria and `max_length` parameter", UserWarning)
    elif found is None:
        out.append(MaxLengthCriteria(max_length=max_length))
    return out
