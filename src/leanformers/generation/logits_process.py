"""Logits processors: functions of (input_ids, scores) -> scores applied before choosing the next token.

Each one reproduces the arithmetic of the Transformers processor of the same name (same order of floating-point
operations where it decides which tokens survive), so seeded sampling picks the same tokens. Processors never
modify `scores` in place.
"""

from __future__ import annotations

import inspect
import math
import numbers

import torch

from ..errors import ConfigError

NEG_INF = -float("inf")


def _eos_tensor(eos_token_id, device=None) -> torch.Tensor:
    """An int, a list of ints or a tensor of token ids -> a 1-D long tensor."""
    if isinstance(eos_token_id, torch.Tensor):
        return eos_token_id.reshape(-1) if eos_token_id.dim() == 0 else eos_token_id
    if isinstance(eos_token_id, int):
        eos_token_id = [eos_token_id]
    return torch.tensor(list(eos_token_id), device=device)


def _check_positive_int(name, value, allow_zero=False):
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        kind = "a non-negative" if allow_zero else "a strictly positive"
        raise ConfigError(f"{name} has to be {kind} integer, but is {value!r}.")


def _check_min_tokens(min_tokens_to_keep):
    _check_positive_int("min_tokens_to_keep", min_tokens_to_keep)


def _without_tokens(processor, token_ids: torch.Tensor, scores) -> torch.Tensor:
    """`scores` with -inf at `token_ids` (those inside the vocabulary), as a new tensor. The ids inside the vocabulary
    are kept on the processor, the same at every step; index_fill touches only their columns, where a masked_fill
    with a (vocab,) mask took 8x as long at a (8, 49152) step."""
    key = (scores.shape[-1], scores.device)
    cached = processor.__dict__.get("_vocab_ids")
    if cached is None or cached[0] != key:
        ids = token_ids.to(scores.device, torch.long)
        cached = processor._vocab_ids = (key, ids[(ids >= 0) & (ids < scores.shape[-1])])
    return scores.index_fill(-1, cached[1], NEG_INF)


class LogitsProcessor:
    """Base class: `__call__(input_ids, scores) -> scores`."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(input_ids, scores).")


LogitsWarper = LogitsProcessor


class LogitsProcessorList(list):
    """Applies its processors in order; extra keyword arguments reach processors that declare them."""

    def __call__(self, input_ids, scores, **kwargs):
        for processor in self:
            extra = _extra_parameters(processor)
            if extra:
                missing = [name for name in extra if name not in kwargs]
                if missing:
                    raise ConfigError(f"{type(processor).__name__} needs the arguments {missing}, which this "
                                      f"decoding strategy does not pass.")
                scores = processor(input_ids, scores, **{name: kwargs[name] for name in extra})
            else:
                scores = processor(input_ids, scores)
        return scores


def _extra_parameters(processor) -> list[str]:
    cached = getattr(type(processor), "_extra_params_cache", None)
    if cached is not None and cached[0] is type(processor).__call__:
        return cached[1]
    params = list(inspect.signature(processor.__call__).parameters.values())[2:]
    names = [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    try:
        type(processor)._extra_params_cache = (type(processor).__call__, names)
    except (AttributeError, TypeError):
        pass
    return names


# ---------------------------------------------------------------------- length
class MinLengthLogitsProcessor(LogitsProcessor):
    """Forbid EOS while the whole sequence is shorter than `min_length`."""

    def __init__(self, min_length: int, eos_token_id, device="cpu"):
        _check_positive_int("min_length", min_length, allow_zero=True)
        self.min_length = min_length
        self.eos_token_id = _eos_tensor(eos_token_id, device)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] >= self.min_length:
            return scores
        return _without_tokens(self, self.eos_token_id, scores)


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """Forbid EOS until `min_new_tokens` tokens follow the prompt."""

    def __init__(self, prompt_length_to_skip: int, min_new_tokens: int, eos_token_id, device="cpu"):
        _check_positive_int("prompt_length_to_skip", prompt_length_to_skip, allow_zero=True)
        _check_positive_int("min_new_tokens", min_new_tokens, allow_zero=True)
        self.prompt_length_to_skip = prompt_length_to_skip
        self.min_new_tokens = min_new_tokens
        self.eos_token_id = _eos_tensor(eos_token_id, device)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] - self.prompt_length_to_skip >= self.min_new_tokens:
            return scores
        return _without_tokens(self, self.eos_token_id, scores)


# ---------------------------------------------------------------------- penalties
class TemperatureLogitsWarper(LogitsProcessor):
    """Divide the scores by `temperature` (> 0)."""

    def __init__(self, temperature: float):
        if not isinstance(temperature, float) or not temperature > 0:
            hint = " For greedy decoding set do_sample=False." if temperature == 0 else ""
            raise ConfigError(f"temperature (={temperature}) has to be a strictly positive float.{hint}")
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Make tokens already present less likely: divide positive scores by `penalty`, multiply negative ones.

    `prompt_ignore_length` (an int, or one length per row) leaves that many leading tokens (e.g. left padding) out.
    """

    def __init__(self, penalty: float, prompt_ignore_length=None):
        if not isinstance(penalty, float) or not penalty > 0:
            raise ConfigError(f"repetition_penalty has to be a strictly positive float, but is {penalty!r}.")
        if isinstance(prompt_ignore_length, int) and prompt_ignore_length < 0:
            raise ConfigError(f"prompt_ignore_length has to be a non-negative integer, got {prompt_ignore_length}.")
        if isinstance(prompt_ignore_length, torch.Tensor) and prompt_ignore_length.dim() != 1:
            raise ConfigError("prompt_ignore_length must be an int or a 1-D tensor (one length per row).")
        self.penalty = penalty
        self.prompt_ignore_length = prompt_ignore_length

    def __call__(self, input_ids, scores):
        vocab = scores.shape[-1]
        if input_ids.dim() == 1:
            input_ids = input_ids[:, None]
        skip = self.prompt_ignore_length
        if isinstance(skip, int):
            input_ids = input_ids[:, skip:]
        elif isinstance(skip, torch.Tensor):
            if skip.shape[0] != input_ids.shape[0]:
                raise ConfigError(f"prompt_ignore_length has {skip.shape[0]} rows but input_ids has "
                                  f"{input_ids.shape[0]}.")
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            # ignored positions point at an extra column that is cut off below
            input_ids = input_ids.masked_fill(positions[None] < skip.to(input_ids.device)[:, None], vocab)
        padded = torch.nn.functional.pad(scores, (0, 1))
        seen = padded.gather(1, input_ids.clamp(max=vocab))
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return padded.scatter(1, input_ids.clamp(max=vocab), seen)[..., :vocab]


class EncoderRepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Make tokens of the encoder input more likely (hallucination penalty); `penalty` > 1 favours them."""

    def __init__(self, penalty: float, encoder_input_ids):
        if not isinstance(penalty, float) or not penalty > 0:
            raise ConfigError(f"encoder_repetition_penalty has to be a strictly positive float, got {penalty!r}.")
        self.penalty = 1 / penalty
        self.encoder_input_ids = encoder_input_ids

    def __call__(self, input_ids, scores):
        ids = self.encoder_input_ids
        if scores.shape[0] > ids.shape[0]:
            ids = ids.repeat_interleave(scores.shape[0] // ids.shape[0], dim=0)
        seen = scores.gather(1, ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter(1, ids, seen)


# ---------------------------------------------------------------------- sampling filters
class TopPLogitsWarper(LogitsProcessor):
    """Nucleus filtering: keep the most likely tokens whose probabilities sum to at least `top_p`."""

    def __init__(self, top_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        top_p = float(top_p)
        if not 0.0 <= top_p <= 1.0:
            raise ConfigError(f"top_p has to be a float in (0, 1], but is {top_p}.")
        _check_min_tokens(min_tokens_to_keep)
        self.top_p, self.filter_value, self.min_tokens_to_keep = top_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        ascending, order = torch.sort(scores, descending=False)
        drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - self.top_p)
        drop[..., -self.min_tokens_to_keep:] = False
        return scores.masked_fill(drop.scatter(1, order, drop), self.filter_value)


class TopKLogitsWarper(LogitsProcessor):
    """Keep the `top_k` highest-scoring tokens (ties with the k-th are kept)."""

    def __init__(self, top_k: int, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        _check_positive_int("top_k", top_k)
        self.top_k = max(top_k, min_tokens_to_keep)
        self.filter_value, self.min_tokens_to_keep = filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        k = min(self.top_k, scores.shape[-1])
        kth = torch.topk(scores, k)[0][..., -1:]
        return scores.masked_fill(scores < kth, self.filter_value)


class MinPLogitsWarper(LogitsProcessor):
    """Drop tokens whose probability is below `min_p` times the top token's probability."""

    def __init__(self, min_p: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        if not 0 <= min_p <= 1.0:
            raise ConfigError(f"min_p has to be a float in [0, 1], but is {min_p}.")
        _check_min_tokens(min_tokens_to_keep)
        self.min_p, self.filter_value, self.min_tokens_to_keep = min_p, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        probs = scores.softmax(dim=-1)
        drop = probs < self.min_p * probs.amax(dim=-1, keepdim=True)
        keep = torch.topk(probs, min(self.min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
        drop.scatter_(-1, keep, False)
        return scores.masked_fill(drop, self.filter_value)


class TypicalLogitsWarper(LogitsProcessor):
    """Locally typical sampling: keep tokens whose surprise is closest to the entropy, up to mass `mass`."""

    def __init__(self, mass: float = 0.9, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        mass = float(mass)
        if not 0 < mass < 1:
            raise ConfigError(f"typical_p has to be a float in (0, 1), but is {mass}.")
        _check_min_tokens(min_tokens_to_keep)
        self.mass, self.filter_value, self.min_tokens_to_keep = mass, filter_value, min_tokens_to_keep

    def __call__(self, input_ids, scores):
        log_p = torch.nn.functional.log_softmax(scores, dim=-1)
        entropy = -(log_p * log_p.exp()).nansum(-1, keepdim=True)
        surprise_gap, order = torch.sort((-log_p - entropy).abs(), descending=False)
        cumulative = scores.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
        last = (cumulative < self.mass).sum(dim=1).clamp_(max=surprise_gap.shape[-1] - 1)
        drop = surprise_gap > surprise_gap.gather(1, last.view(-1, 1))
        drop[..., :self.min_tokens_to_keep] = False
        return scores.masked_fill(drop.scatter(1, order, drop), self.filter_value)


class EpsilonLogitsWarper(LogitsProcessor):
    """Drop tokens whose probability is below `epsilon`."""

    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1):
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise ConfigError(f"epsilon_cutoff has to be a float in (0, 1), but is {epsilon}.")
        _check_min_tokens(int(min_tokens_to_keep))
        self.epsilon, self.filter_value, self.min_tokens_to_keep = epsilon, filter_value, int(min_tokens_to_keep)

    def _threshold(self, scores):
        return self.epsilon

    def __call__(self, input_ids, scores):
        drop = scores.softmax(dim=-1) < self._threshold(scores)
        kth = torch.topk(scores, min(self.min_tokens_to_keep, scores.shape[-1]))[0][..., -1:]
        return scores.masked_fill(drop & (scores < kth), self.filter_value)


class EtaLogitsWarper(EpsilonLogitsWarper):
    """Eta sampling: the cutoff is min(eta, sqrt(eta) * exp(-entropy))."""

    def __init__(self, epsilon: float, filter_value: float = NEG_INF, min_tokens_to_keep: int = 1, device="cpu"):
        epsilon = float(epsilon)
        if not 0 < epsilon < 1:
            raise ConfigError(f"eta_cutoff has to be a float in (0, 1), but is {epsilon}.")
        super().__init__(epsilon, filter_value, min_tokens_to_keep)
        self.epsilon = torch.tensor(epsilon, device=device)

    def _threshold(self, scores):
        entropy = torch.distributions.Categorical(logits=scores).entropy()
        eps = self.epsilon.to(scores.device)
        return torch.min(eps, torch.sqrt(eps) * torch.exp(-entropy))[..., None]


class LogitNormalization(LogitsProcessor):
    """Turn scores into log-probabilities (renormalize_logits=True)."""

    def __call__(self, input_ids, scores):
        return scores.log_softmax(dim=-1)


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """Replace nan by 0 and +-inf by the largest finite values of the dtype."""

    def __call__(self, input_ids, scores):
        info = torch.finfo(scores.dtype)
        out = torch.where(scores != scores, 0.0, scores)
        out = torch.where(scores == float("inf"), info.max, out)
        return torch.where(scores == NEG_INF, info.min, out)


# ---------------------------------------------------------------------- n-grams and word lists
class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Forbid any token that would repeat an n-gram of size `ngram_size` already in the sequence."""

    def __init__(self, ngram_size: int):
        _check_positive_int("no_repeat_ngram_size", ngram_size)
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        n, length = self.ngram_size, input_ids.shape[-1]
        if length < n:
            return scores
        windows = input_ids.unfold(1, n, 1)                                  # (batch, windows, n)
        hits = (windows[..., :-1] == input_ids[:, None, length + 1 - n:]).all(dim=-1)  # (batch, windows)
        vocab = scores.shape[-1]
        banned = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
        banned.scatter_(1, torch.where(hits, windows[..., -1].clamp(max=vocab), vocab), True)
        return scores.masked_fill(banned[:, :vocab], NEG_INF)


class EncoderNoRepeatNGramLogitsProcessor(LogitsProcessor):
    """Forbid n-grams of the encoder input from appearing in the output (encoder-decoder models)."""

    def __init__(self, encoder_ngram_size: int, encoder_input_ids):
        _check_positive_int("encoder_no_repeat_ngram_size", encoder_ngram_size)
        self.ngram_size = encoder_ngram_size
        if encoder_input_ids.dim() == 1:
            encoder_input_ids = encoder_input_ids[None]
        self.batch_size = encoder_input_ids.shape[0]
        self.generated_ngrams = [_ngram_table(row.tolist(), encoder_ngram_size) for row in encoder_input_ids]

    def __call__(self, input_ids, scores):
        hypos = scores.shape[0]
        beams = hypos // self.batch_size
        out = scores.clone()
        start = input_ids.shape[-1] + 1 - self.ngram_size
        for i in range(hypos):
            prefix = tuple(input_ids[i, start:].tolist()) if start >= 0 else None
            banned = self.generated_ngrams[i // beams].get(prefix, []) if prefix is not None else []
            if banned:
                out[i, banned] = NEG_INF
        return out


def _ngram_table(tokens: list[int], n: int) -> dict[tuple, list[int]]:
    """{first n-1 tokens: [last tokens]} over all n-grams of `tokens`."""
    table: dict[tuple, list[int]] = {}
    for i in range(len(tokens) - n + 1):
        table.setdefault(tuple(tokens[i:i + n - 1]), []).append(tokens[i + n - 1])
    return table


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Add a bias to a token when the tokens before it complete a given sequence.

    `sequence_bias` is {tuple(token ids): bias} or [[token ids, bias], ...].
    """

    def __init__(self, sequence_bias):
        self.sequence_bias = _bias_dict(sequence_bias)
        self._single = None
        self._groups = None

    def _prepare(self, scores):
        vocab = scores.shape[-1]
        too_large = [t for seq in self.sequence_bias for t in seq if t >= vocab]
        if too_large:
            raise ConfigError(f"The model vocabulary has {vocab} tokens, but these biased tokens are out of range: "
                              f"{too_large}.")
        self._single = torch.zeros(vocab, dtype=torch.float, device=scores.device)
        by_prefix: dict[int, list] = {}
        for seq, bias in self.sequence_bias.items():
            if len(seq) == 1:
                self._single[seq[0]] = bias
            else:
                by_prefix.setdefault(len(seq) - 1, []).append((seq, bias))
        self._groups = [(torch.tensor([s[:-1] for s, _ in group], device=scores.device),
                         torch.tensor([s[-1] for s, _ in group], device=scores.device),
                         torch.tensor([b for _, b in group], dtype=torch.float, device=scores.device))
                        for group in by_prefix.values()]

    def __call__(self, input_ids, scores):
        if self._single is None:
            self._prepare(scores)
        bias = torch.zeros_like(scores) + self._single
        for prefixes, last_tokens, biases in self._groups:
            width = prefixes.shape[1]
            if width > input_ids.shape[1]:
                continue
            match = (input_ids[:, None, -width:] == prefixes).all(dim=-1)      # (batch, sequences)
            bias.index_add_(1, last_tokens, torch.where(match, biases, 0.0).to(bias.dtype))
        return scores + bias


def _bias_dict(sequence_bias) -> dict[tuple, float]:
    def bad():
        raise ConfigError(f"sequence_bias has to be a non-empty dict {{tuple of token ids: float}} or a list of "
                          f"[[token ids], float] pairs, but is {sequence_bias!r}.")
    if not isinstance(sequence_bias, (dict, list)) or len(sequence_bias) == 0:
        bad()
    items = sequence_bias.items() if isinstance(sequence_bias, dict) else sequence_bias
    out = {}
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            bad()
        seq, bias = item
        if isinstance(sequence_bias, dict) and not isinstance(seq, tuple):
            bad()
        if isinstance(sequence_bias, list) and not isinstance(seq, list):
            bad()
        if len(seq) == 0 or not isinstance(bias, float) or any(not _is_token(t) for t in seq):
            bad()
        out[tuple(int(t) for t in seq)] = bias
    return out


def _is_token(t) -> bool:
    return isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 0


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """Forbid the token that would complete any of `bad_words_ids` (EOS alone is never forbidden here)."""

    def __init__(self, bad_words_ids, eos_token_id=None):
        if not isinstance(bad_words_ids, list) or len(bad_words_ids) == 0:
            raise ConfigError(f"bad_words_ids has to be a non-empty list of lists of token ids, got {bad_words_ids!r}.")
        if any(not isinstance(w, list) or any(not _is_token(t) for t in w) for w in bad_words_ids):
            raise ConfigError(f"Each entry of bad_words_ids has to be a list of non-negative token ids, got "
                              f"{bad_words_ids!r}.")
        self.bad_word_ids = bad_words_ids
        if eos_token_id is not None:
            eos = _eos_tensor(eos_token_id).tolist()
            bad_words_ids = [w for w in bad_words_ids if all(w != [e] for e in eos)]
        super().__init__({tuple(w): NEG_INF for w in bad_words_ids})


class PrefixConstrainedLogitsProcessor(LogitsProcessor):
    """Allow only the tokens `prefix_allowed_tokens_fn(batch_id, sequence)` returns."""

    def __init__(self, prefix_allowed_tokens_fn, num_beams: int):
        self._prefix_allowed_tokens_fn = prefix_allowed_tokens_fn
        self._num_beams = num_beams

    def __call__(self, input_ids, scores):
        mask = torch.full_like(scores, -math.inf)
        batch = input_ids.shape[0] // self._num_beams
        for row in range(input_ids.shape[0]):
            allowed = self._prefix_allowed_tokens_fn(row // self._num_beams, input_ids[row])
            if len(allowed) == 0:
                raise ConfigError(f"prefix_allowed_tokens_fn returned no token for batch {row // self._num_beams}; "
                                  f"the constraint cannot be satisfied.")
            mask[row, allowed] = 0
        out = scores + mask
        hopeless = out.amax(dim=-1).isneginf().view(batch, -1).all(dim=-1, keepdim=True)
        return torch.where(hopeless.repeat_interleave(self._num_beams, dim=0), mask, out)


# ---------------------------------------------------------------------- forced and suppressed tokens
class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """Force `bos_token_id` as the first generated token (encoder-decoder models)."""

    def __init__(self, bos_token_id: int):
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] != 1:
            return scores
        out = torch.full_like(scores, -math.inf)
        out[:, self.bos_token_id] = 0
        return out


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """Force EOS as the last token when `max_length` is reached."""

    def __init__(self, max_length: int, eos_token_id, device="cpu"):
        self.max_length = max_length
        self.eos_token_id = _eos_tensor(eos_token_id, device)
        if torch.is_floating_point(self.eos_token_id) or (self.eos_token_id < 0).any():
            raise ConfigError(f"forced_eos_token_id has to be non-negative token ids, but is {eos_token_id!r}.")

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] != self.max_length - 1:
            return scores
        out = torch.full_like(scores, -math.inf)
        out[:, self.eos_token_id.to(scores.device)] = 0
        return out


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """After `start` new tokens, raise EOS scores by |score| * (factor ** steps - 1)."""

    def __init__(self, exponential_decay_length_penalty, eos_token_id, input_ids_seq_length: int):
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = exponential_decay_length_penalty[1]
        self.eos_token_id = _eos_tensor(eos_token_id)
        if torch.is_floating_point(self.eos_token_id) or (self.eos_token_id < 0).any():
            raise ConfigError(f"eos_token_id has to be non-negative token ids, but is {eos_token_id!r}.")

    def __call__(self, input_ids, scores):
        steps = input_ids.shape[-1] - self.regulation_start
        if steps <= 0:
            return scores
        eos = self.eos_token_id.to(scores.device)
        eos_scores = scores[:, eos]
        penalty = (eos_scores.abs() * (pow(self.regulation_factor, steps) - 1)).masked_fill(
            ~torch.isfinite(eos_scores), 0.0)
        penalties = torch.zeros_like(scores)
        penalties[:, eos] = penalty
        return scores + penalties


class SuppressTokensLogitsProcessor(LogitsProcessor):
    """Never generate `suppress_tokens`."""

    def __init__(self, suppress_tokens, device="cpu"):
        self.suppress_tokens = torch.tensor(list(suppress_tokens), device=device)

    def __call__(self, input_ids, scores):
        return _without_tokens(self, self.suppress_tokens, scores)


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """Forbid `begin_suppress_tokens` as the first generated token (when the length equals `begin_index`)."""

    def __init__(self, begin_suppress_tokens, begin_index: int, device="cpu"):
        self.begin_suppress_tokens = torch.tensor(list(begin_suppress_tokens), device=device)
        self.begin_index = begin_index

    def set_begin_index(self, begin_index: int):
        self.begin_index = begin_index

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] != self.begin_index:
            return scores
        return _without_tokens(self, self.begin_suppress_tokens, scores)


class HammingDiversityLogitsProcessor(LogitsProcessor):
    """Diverse beam search: lower the scores of tokens the earlier beam groups chose at this step."""

    def __init__(self, diversity_penalty: float, num_beams: int, num_beam_groups: int):
        if not isinstance(diversity_penalty, float) or not diversity_penalty > 0.0:
            raise ConfigError("diversity_penalty should be a float strictly larger than 0.")
        if not isinstance(num_beams, int) or num_beams < 2:
            raise ConfigError("num_beams should be an integer strictly larger than 1 for diverse beam search.")
        if not isinstance(num_beam_groups, int) or num_beam_groups < 2:
            raise ConfigError("num_beam_groups should be an integer strictly larger than 1 for diverse beam search.")
        if num_beam_groups > num_beams:
            raise ConfigError("num_beam_groups has to be smaller or equal to num_beams.")
        self._diversity_penalty = diversity_penalty
        self._num_beams = num_beams
        self._num_sub_beams = num_beams // num_beam_groups

    def __call__(self, input_ids, scores, current_tokens, beam_group_idx):
        start = beam_group_idx * self._num_sub_beams
        if start == 0:
            return scores
        group = min(start + self._num_sub_beams, self._num_beams) - start
        batch = current_tokens.shape[0] // self._num_beams
        out = scores.clone()
        for b in range(batch):
            earlier = current_tokens[b * self._num_beams: b * self._num_beams + start]
            counts = torch.bincount(earlier, minlength=scores.shape[-1]).to(scores.device)
            out[b * group:(b + 1) * group] -= self._diversity_penalty * counts
        return out
