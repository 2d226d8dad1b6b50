"""Beam search and beam sampling (vectorised, as in Transformers 5), and the two beam strategies Transformers 5
moved out of its core, diverse (group) and constrained beam search (bookkept per hypothesis, as in 4.x).

Shapes: `batch` prompts, `beams` hypotheses each; the vectorised search keeps (batch, beams, max_length) buffers.
"""

from __future__ import annotations

import torch

from .decoding import GrowingInputs, Recorder, reorder_cache
from .legacy_beams import BeamHypotheses, constrained_beam_search, group_beam_search
from .outputs import output_for

_FAR = -1.0e9  # "impossible" score that still allows arithmetic


def _gather(tensor, index):
    """tensor[b, index[b, j], ...] for a (batch, beams, ...) tensor and a (batch, k) index."""
    while index.dim() < tensor.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(tensor, index, dim=1)


def _flat(tensor):
    return tensor.reshape(tensor.shape[0] * tensor.shape[1], *tensor.shape[2:])


class _Beams:
    """State of the vectorised beam search: running hypotheses and the best finished ones, per prompt."""

    def __init__(self, input_ids, num_beams, max_length, fill_value, keep):
        flat_rows, self.prompt = input_ids.shape
        self.batch, self.beams, self.keep = flat_rows // num_beams, num_beams, keep
        device = input_ids.device
        self.running = torch.full((self.batch, num_beams, max_length), fill_value, dtype=torch.int64, device=device)
        self.running[:, :, :self.prompt] = input_ids.view(self.batch, num_beams, -1)
        self.finished = self.running.clone()
        self.running_scores = torch.zeros((self.batch, num_beams), dtype=torch.float, device=device)
        self.running_scores[:, 1:] = _FAR  # start from one beam; identical copies would crowd the top-k
        self.finished_scores = torch.full((self.batch, num_beams), _FAR, dtype=torch.float, device=device)
        self.is_finished = torch.zeros((self.batch, num_beams), dtype=torch.bool, device=device)
        self.improvable = torch.ones((self.batch, 1), dtype=torch.bool, device=device)
        self.running_origin = torch.full((self.batch, num_beams, max_length - self.prompt), -1, dtype=torch.int32,
                                         device=device)
        self.finished_origin = self.running_origin.clone()
        self.top_mask = torch.arange(keep, device=device) < num_beams

    def candidates(self, log_probs, cur_len, do_sample):
        """The `keep` best (or sampled) continuations over all beams of each prompt."""
        if do_sample:
            picked = torch.multinomial(log_probs.softmax(dim=-1), num_samples=self.keep)
            scores, order = log_probs.gather(1, picked).sort(dim=-1, descending=True)
            picked = picked.gather(-1, order)
        else:
            scores, picked = torch.topk(log_probs, k=self.keep)
        vocab = log_probs.shape[-1] // self.beams
        source = picked // vocab
        sequences = _gather(self.running, source)
        sequences[:, :, cur_len] = picked % vocab
        origin = _gather(self.running_origin, source)
        offset = torch.arange(self.batch, device=source.device).view(-1, 1) * self.beams
        origin[:, :, cur_len - self.prompt] = (source + offset).to(origin.dtype)
        return scores, sequences, origin

    def advance_running(self, scores, sequences, origin, hits):
        """The next running beams: the best continuations that did not just stop."""
        alive = scores + hits.to(torch.float32) * _FAR
        best = torch.topk(alive, k=self.beams)[1]
        self.running = _gather(sequences, best)
        self.running_scores = _gather(alive, best)
        self.running_origin = _gather(origin, best)

    def advance_finished(self, scores, sequences, origin, hits, cur_len, length_penalty, early_stopping):
        """Merge the continuations that just stopped (among the top `beams`) into the finished beams."""
        just_done = hits & self.top_mask[None, :]
        normalized = scores / ((cur_len + 1 - self.prompt) ** length_penalty)
        full = torch.all(self.is_finished, dim=-1, keepdim=True) & (early_stopping is True)
        normalized = normalized + full.to(torch.float32) * _FAR
        normalized = normalized + (~self.improvable).to(torch.float32) * _FAR
        normalized = normalized + (~just_done) * _FAR
        merged_scores = torch.cat((self.finished_scores, normalized), dim=1)
        best = torch.topk(merged_scores, k=self.beams)[1]
        self.finished = _gather(torch.cat((self.finished, sequences), dim=1), best)
        self.finished_scores = _gather(merged_scores, best)
        self.finished_origin = _gather(torch.cat((self.finished_origin, origin), dim=1), best)
        self.is_finished = _gather(torch.cat((self.is_finished, just_done), dim=1), best)

    def update_improvable(self, cur_len, max_length, length_penalty, early_stopping):
        """Whether a running beam could still beat the worst finished one."""
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - self.prompt
        else:
            best_length = cur_len - self.prompt
        best_running = self.running_scores[:, :1] / (best_length ** length_penalty)
        worst_finished = torch.where(self.is_finished, torch.min(self.finished_scores, dim=1, keepdim=True)[0], _FAR)
        self.improvable = self.improvable & torch.any(best_running > worst_finished, dim=-1, keepdim=True)

    def should_continue(self, hits, early_stopping) -> bool:
        open_beam = ~(torch.all(self.is_finished) & (early_stopping is True))
        return bool(torch.any(self.improvable) & open_beam & ~torch.all(hits))


def beam_search(self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False,
                streamer=None, **model_kwargs):
    """Beam search (or beam sampling when `do_sample`), `num_beams` hypotheses per prompt."""
    config = generation_config
    pad, eos = config._pad_token_tensor, config._eos_token_tensor
    beams, max_length = config.num_beams, config.max_length
    keep = max(2, 1 + (eos.shape[0] if eos is not None else 0)) * beams  # enough to survive EOS endings
    fill = -1 if eos is None else (pad if pad is not None and bool(pad != 0) else eos[0])
    state = _Beams(input_ids, beams, max_length, int(fill), keep)
    recorder = Recorder(config, self._is_encoder_decoder)
    growing = GrowingInputs(self, input_ids, model_kwargs, max_length)
    cur_len = input_ids.shape[1]
    flat_running = input_ids
    outputs = self._prefill(input_ids, config, model_kwargs)
    finished = False
    while True:
        growing.after_forward(outputs)
        if not (synced_gpus and finished):
            logits = outputs.logits[:, -1, :].to(dtype=torch.float32, device=input_ids.device)
            log_probs = torch.log_softmax(logits, dim=-1)
            log_probs = logits_processor(flat_running, log_probs) if logits_processor else log_probs
            recorder.add(log_probs, logits, outputs)
            del outputs
            log_probs = log_probs.view(state.batch, beams, -1) + state.running_scores[:, :, None]
            scores, sequences, origin = state.candidates(log_probs.view(state.batch, -1), cur_len, config.do_sample)
            hits = stopping_criteria(_flat(sequences[:, :, :cur_len + 1]), recorder.scores)
            hits = hits.view(state.batch, keep)
            state.advance_running(scores, sequences, origin, hits)
            state.advance_finished(scores, sequences, origin, hits, cur_len, config.length_penalty,
                                   config.early_stopping)
            reorder_cache(self, model_kwargs, _flat(state.running_origin[..., cur_len - state.prompt]))
            cur_len += 1
            state.update_improvable(cur_len, max_length, config.length_penalty, config.early_stopping)
            finished = not state.should_continue(hits, config.early_stopping)
        if not self._has_unfinished_sequences(finished, synced_gpus, input_ids.device):
            break
        flat_running = _flat(state.running[:, :, :cur_len])
        step = 1 if model_kwargs.get("use_cache", True) else None
        outputs = self(**self.prepare_inputs_for_generation(flat_running, next_sequence_length=step, **model_kwargs),
                       return_dict=True)
    return _beam_output(self, state, config, recorder, model_kwargs)


def _beam_output(model, state, config, recorder, model_kwargs):
    n = config.num_return_sequences
    sequences = _flat(state.finished[:, :n, :])
    scores = _flat(state.finished_scores[:, :n])
    origin = _flat(state.finished_origin[:, :n, :])
    generated = int((origin + 1).bool().sum(dim=1).max())
    sequences, origin = sequences[:, :state.prompt + generated], origin[:, :generated]
    if not config.return_dict_in_generate:
        return sequences
    fields = recorder.fields()
    name = model._cache_argument()
    return output_for(True, model._is_encoder_decoder, sequences, cache=model_kwargs.get(name) if name else None,
                      encoder_outputs=model_kwargs.get("encoder_outputs"),
                      sequences_scores=scores if config.output_scores else None, beam_indices=origin, **fields)


__all__ = ["beam_search", "group_beam_search", "constrained_beam_search", "BeamHypotheses"]
