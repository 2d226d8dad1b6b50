"""Diverse (group) beam search and constrained beam search, bookkept per hypothesis like Transformers 4.x.

Transformers 5 moved these two strategies out of its core; their reference is Transformers 4.55, whose results
(sequences, scores, tie-breaking) this module reproduces.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .beam_constraints import ConstraintListState, DisjunctiveConstraint, PhrasalConstraint
from .decoding import GrowingInputs, Recorder, reorder_cache
from .outputs import output_for


class BeamHypotheses:
    """The `num_beams` best finished hypotheses of one prompt (or one group), scored by length-normalised sum."""

    def __init__(self, num_beams: int, length_penalty: float, early_stopping, max_length: int | None = None):
        if not isinstance(early_stopping, bool) and max_length is None:
            raise ConfigError("early_stopping='never' needs max_length.")
        self.num_beams, self.length_penalty = num_beams, length_penalty
        self.early_stopping, self.max_length = early_stopping, max_length
        self.beams: list[tuple] = []
        self.worst_score = 1e9

    def __len__(self):
        return len(self.beams)

    def add(self, hyp, sum_logprobs: float, beam_indices=None, generated_len: int | None = None):
        length = generated_len if generated_len is not None else hyp.shape[-1]
        score = sum_logprobs / (length ** self.length_penalty)
        if len(self) < self.num_beams or score > self.worst_score:
            self.beams.append((score, hyp, beam_indices))
            if len(self) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, cur_len: int, decoder_prompt_len: int = 0) -> bool:
        if len(self) < self.num_beams:
            return False
        if self.early_stopping is True:
            return True
        if self.early_stopping is False or self.length_penalty <= 0.0:
            best = best_sum_logprobs / (cur_len - decoder_prompt_len) ** self.length_penalty
        else:
            if self.max_length <= decoder_prompt_len:
                raise ConfigError("max_length is not larger than the prompt length.")
            best = best_sum_logprobs / (self.max_length - decoder_prompt_len) ** self.length_penalty
        return self.worst_score >= best


class _Scorer:
    """Per-prompt (per-group) finished hypotheses and the choice of the next running beams."""

    def __init__(self, batch_size, num_beams, length_penalty, early_stopping, keep, groups=1, max_length=None,
                 device=None):
        self.num_beams, self.groups, self.keep = num_beams, groups, keep
        self.group_size = num_beams // groups
        self.hyps = [BeamHypotheses(self.group_size, length_penalty, early_stopping, max_length)
                     for _ in range(batch_size * groups)]
        self.done = torch.zeros(batch_size * groups, dtype=torch.bool, device=device)

    @property
    def is_done(self) -> bool:
        return bool(self.done.all())

    def _select(self, hyp, input_ids, batch, scores, tokens, origins, eos, beam_indices, gen_len, on_eos):
        """Walk the ranked candidates of one prompt: EOS endings become hypotheses, others the next beams."""
        size = self.group_size
        out_scores = scores.new_zeros(size)
        out_tokens, out_origins = tokens.new_zeros(size), origins.new_zeros(size)
        filled = 0
        for rank, (token, score, origin) in enumerate(zip(tokens[batch], scores[batch], origins[batch])):
            row = batch * size + origin
            if eos is not None and token.item() in eos:
                if rank < size:
                    on_eos(hyp, input_ids, row, score, beam_indices, gen_len)
            else:
                out_scores[filled], out_tokens[filled], out_origins[filled] = score, token, row
                filled += 1
            if filled == size:
                break
        if filled < size:
            raise ConfigError(f"At most {size} of the candidate tokens {tokens[batch].tolist()} may be EOS tokens "
                              f"{eos}; keep more candidates per beam.")
        return out_scores, out_tokens, out_origins

    @staticmethod
    def _add_finished(hyp, input_ids, row, score, beam_indices, gen_len):
        index = beam_indices[row] + (row,) if beam_indices is not None else None
        hyp.add(input_ids[row].clone(), score.item(), beam_indices=index, generated_len=gen_len)

    def process(self, input_ids, scores, tokens, origins, pad=None, eos=None, beam_indices=None, group_index=0,
                decoder_prompt_len=0):
        cur_len = input_ids.shape[-1] + 1
        batch_size = len(self.hyps) // self.groups
        shape = (batch_size, self.group_size)
        out = (scores.new_zeros(shape), tokens.new_zeros(shape), origins.new_zeros(shape))
        for batch in range(batch_size):
            slot = batch * self.groups + group_index
            if self.done[slot]:
                if eos is None or pad is None:
                    raise ConfigError("A finished prompt needs eos_token_id and pad_token_id to pad its beams.")
                out[0][batch], out[1][batch], out[2][batch] = 0, pad, 0
                continue
            picked = self._select(self.hyps[slot], input_ids, batch, scores, tokens, origins, eos, beam_indices,
                                  cur_len - decoder_prompt_len, self._add_finished)
            for target, value in zip(out, picked):
                target[batch] = value
            self.done[slot] = self.done[slot] or self.hyps[slot].is_done(scores[batch].max().item(), cur_len,
                                                                         decoder_prompt_len)
        return {"next_beam_scores": out[0].view(-1), "next_beam_tokens": out[1].view(-1),
                "next_beam_indices": out[2].view(-1)}

    def _candidates(self, batch):
        """Finished hypotheses of prompt `batch`, over all its groups."""
        return [beam for hyp in self.hyps[batch * self.groups:(batch + 1) * self.groups] for beam in hyp.beams]

    def _add_running(self, input_ids, final_scores, beam_indices, prompt_len):
        for slot, hyp in enumerate(self.hyps):
            if self.done[slot]:
                continue
            for i in range(self.group_size):
                row = slot * self.group_size + i
                index = beam_indices[row] if beam_indices is not None else None
                hyp.add(input_ids[row], final_scores[row].item(), beam_indices=index,
                        generated_len=input_ids.shape[-1] - prompt_len)

    def finalize(self, input_ids, final_scores, max_length, pad=None, eos=None, beam_indices=None,
                 decoder_prompt_len=0):
        """The `keep` best hypotheses per prompt, padded into one tensor (EOS after the shorter ones)."""
        self._add_running(input_ids, final_scores, beam_indices, decoder_prompt_len)
        batch_size = len(self.hyps) // self.groups
        best, best_indices, best_scores = [], [], torch.zeros(batch_size * self.keep, dtype=torch.float32,
                                                              device=input_ids.device)
        for batch in range(batch_size):
            ranked = sorted(self._candidates(batch), key=lambda beam: beam[0])
            for j in range(self.keep):
                score, hyp, index = ranked.pop()
                best.append(hyp)
                best_indices.append(index)
                best_scores[batch * self.keep + j] = score
        return _pack(best, best_indices, best_scores, input_ids, max_length, pad, eos)


def _pack(best, best_indices, best_scores, input_ids, max_length, pad, eos):
    lengths = [len(hyp) for hyp in best]
    width = max(lengths) + 1
    width = min(width, max_length) if max_length is not None else width
    decoded = input_ids.new_zeros((len(best), width))
    if min(lengths) != max(lengths):
        if pad is None:
            raise ConfigError("pad_token_id has to be defined to return hypotheses of different lengths.")
        decoded.fill_(int(pad))
    indices = None
    if best_indices and best_indices[0] is not None:
        indices = input_ids.new_full((len(best), width), -1)
    for i, (hyp, index) in enumerate(zip(best, best_indices)):
        decoded[i, :lengths[i]] = hyp
        if indices is not None:
            indices[i, :len(index)] = torch.tensor(index)
        if lengths[i] < width and eos is not None:
            decoded[i, lengths[i]] = eos[0]
    return {"sequences": decoded, "sequence_scores": best_scores, "beam_indices": indices}


class _ConstrainedScorer(_Scorer):
    """Beam choice that also keeps hypotheses making progress on the constraints (banked by progress)."""

    def __init__(self, constraints, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.constraints = constraints

    def states(self, n):
        return [ConstraintListState([c.copy() for c in self.constraints]) for _ in range(n)]

    def completes(self, sequence) -> bool:
        state = self.states(1)[0]
        state.reset(sequence)
        return state.completed

    def _add_if_complete(self, hyp, input_ids, row, score, beam_indices, gen_len):
        if self.completes(input_ids[row].tolist()):
            self._add_finished(hyp, input_ids, row, score, beam_indices, gen_len)

    def process_constrained(self, input_ids, scores, tokens, origins, vocab_scores, pad=None, eos=None,
                            beam_indices=None, decoder_prompt_len=0):
        cur_len = input_ids.shape[-1] + 1
        shape = (len(self.hyps), self.group_size)
        out = (scores.new_zeros(shape), tokens.new_zeros(shape), origins.new_zeros(shape))
        for batch, hyp in enumerate(self.hyps):
            if self.done[batch]:
                if eos is None or pad is None:
                    raise ConfigError("A finished prompt needs eos_token_id and pad_token_id to pad its beams.")
                out[0][batch], out[1][batch], out[2][batch] = 0, pad, 0
                continue
            picked = self._select(hyp, input_ids, batch, scores, tokens, origins, eos, beam_indices,
                                  cur_len - decoder_prompt_len, self._add_if_complete)
            picked = self._with_progress(batch, input_ids, vocab_scores, *picked)
            for target, value in zip(out, picked):
                target[batch] = value
            self.done[batch] = self.done[batch] or hyp.is_done(scores[batch].max().item(), cur_len,
                                                               decoder_prompt_len)
        return {"next_beam_scores": out[0].view(-1), "next_beam_tokens": out[1].view(-1),
                "next_beam_indices": out[2].view(-1)}

    def _with_progress(self, batch, input_ids, vocab_scores, beam_scores, beam_tokens, beam_rows):
        """Add, for each running beam, the tokens that advance its constraints; keep the best per progress bank."""
        size = beam_rows.shape[0]
        start = batch * size
        chosen_states = self.states(size)
        full = torch.cat((input_ids[beam_rows], beam_tokens[:, None]), dim=-1)
        seen = full.tolist()
        new_rows, new_tokens, new_scores, new_states = [], [], [], []
        for i, prefix in enumerate(input_ids[start:start + size]):
            chosen_states[i].reset(full[i].tolist())
            state = self.states(1)[0]
            state.reset(prefix.tolist())
            if state.completed:
                continue
            for token in torch.tensor(state.advance(), dtype=torch.long, device=beam_rows.device):
                advanced = state.copy(stateful=True)
                advanced.add(token.item())
                sequence = torch.cat((prefix, token[None]), -1).tolist()
                if sequence not in seen:
                    seen.append(sequence)
                    new_rows.append(start + i)
                    new_tokens.append(token)
                    new_scores.append(vocab_scores[start + i].take(token))
                    new_states.append(advanced)
        if not new_rows:
            return beam_scores, beam_tokens, beam_rows
        all_tokens = torch.cat((beam_tokens, torch.stack(new_tokens)))
        all_scores = torch.cat((beam_scores, torch.stack(new_scores)))
        banks = torch.tensor([st.get_bank() for st in chosen_states + new_states], device=beam_rows.device)
        order = (banks * 100 + all_scores).sort(descending=True).indices
        # round-robin over the banks: the best of each bank first, then the second best of each, ...
        rank_in_bank, previous, count = [], None, -1
        for bank in banks[order].tolist():
            count = count + 1 if bank == previous else 0
            previous = bank
            rank_in_bank.append(count)
        order = order[sorted(range(len(rank_in_bank)), key=rank_in_bank.__getitem__)][:size]
        rows = torch.cat((beam_rows, torch.tensor(new_rows, device=beam_rows.device)))
        return all_scores[order], all_tokens[order], rows[order]

    def finalize(self, input_ids, final_scores, max_length, pad=None, eos=None, beam_indices=None,
                 decoder_prompt_len=0):
        gen_len = input_ids.shape[-1] - decoder_prompt_len
        for batch, hyp in enumerate(self.hyps):
            if self.done[batch]:
                continue
            complete = []
            for i in range(self.num_beams):
                row = batch * self.num_beams + i
                if self.completes(input_ids[row].tolist()):
                    index = beam_indices[row] if beam_indices is not None else None
                    hyp.add(input_ids[row], final_scores[row].item(), beam_indices=index, generated_len=gen_len)
                    complete.append(i)
            if len(complete) < self.keep:  # too few satisfy the constraints: fall back to the others
                for i in range(self.num_beams):
                    if i not in complete:
                        row = batch * self.num_beams + i
                        hyp.add(input_ids[row], final_scores[row].item(), generated_len=gen_len)
        best, best_indices = [], []
        best_scores = torch.zeros(len(self.hyps) * self.keep, dtype=torch.float32, device=input_ids.device)
        for batch, hyp in enumerate(self.hyps):
            ranked = sorted(hyp.beams, key=lambda beam: beam[0])
            for j in range(self.keep):
                score, sequence, index = ranked.pop()
                best.append(sequence)
                best_indices.append(index)
                best_scores[batch * self.keep + j] = score
        return _pack(best, best_indices, best_scores, input_ids, max_length, pad, eos)


def build_constraints(generation_config) -> list:
    """`constraints` plus one constraint per entry of `force_words_ids` (a list of ids, or of alternatives)."""
    constraints = list(generation_config.constraints or [])
    words = generation_config.force_words_ids
    if words is None:
        return constraints

    def bad():
        raise ConfigError(f"force_words_ids has to be a list[list[int]] or list[list[list[int]]] of non-negative "
                          f"token ids, but is {words!r}.")
    if not isinstance(words, list) or len(words) == 0:
        bad()
    for word in words:
        if not isinstance(word, list) or len(word) == 0:
            bad()
        try:
            constraints.append(DisjunctiveConstraint(word) if isinstance(word[0], list) else PhrasalConstraint(word))
        except ConfigError:
            bad()
    return constraints


def _beam_loop_setup(model, input_ids, config, model_kwargs):
    eos = config._eos_token_tensor
    keep_per_beam = max(2, 1 + (eos.shape[0] if eos is not None else 0))
    growing = GrowingInputs(model, input_ids, model_kwargs, config.max_length)
    return keep_per_beam, growing, Recorder(config, model._is_encoder_decoder)


def _step_logits(model, input_ids, config, model_kwargs, growing, first):
    """Forward pass of one step (the prefill first), then the model kwargs extended by one column."""
    if first:
        outputs = model._prefill(input_ids, config, model_kwargs)
    else:
        step = 1 if model_kwargs.get("use_cache", True) else None
        outputs = model(**model.prepare_inputs_for_generation(input_ids, next_sequence_length=step,
                                                              **model_kwargs), return_dict=True)
    growing.after_forward(outputs)
    return outputs


def group_beam_search(self, input_ids, logits_processor, stopping_criteria, generation_config, synced_gpus=False,
                      streamer=None, **model_kwargs):
    """Diverse beam search: `num_beam_groups` groups of beams, each penalised for the tokens of earlier groups."""
    config = generation_config
    pad, eos = config._pad_token_tensor, config._eos_token_tensor
    beams, groups = config.num_beams, config.num_beam_groups
    size = beams // groups
    batch = input_ids.shape[0] // beams
    prompt_len = input_ids.shape[1]
    scorer = _Scorer(batch, beams, config.length_penalty, config.early_stopping, config.num_return_sequences,
                     groups=groups, max_length=config.max_length, device=input_ids.device)
    per_beam, growing, recorder = _beam_loop_setup(self, input_ids, config, model_kwargs)
    track = config.return_dict_in_generate and config.output_scores
    beam_indices = [tuple(() for _ in range(size * batch)) for _ in range(groups)] if track else None
    beam_scores = torch.full((batch, beams), -1e9, dtype=torch.float, device=input_ids.device)
    beam_scores[:, ::size] = 0
    beam_scores = beam_scores.view(-1)
    first = True
    while True:
        outputs = _step_logits(self, input_ids, config, model_kwargs, growing, first)
        first = False
        current = torch.zeros(batch * beams, dtype=input_ids.dtype, device=input_ids.device)
        reorder = torch.zeros(batch * beams, dtype=torch.long, device=input_ids.device)
        processed = torch.zeros_like(outputs.logits[:, -1, :]) if recorder.scores is not None else None
        for group in range(groups):
            rows = [b * beams + i for b in range(batch) for i in range(group * size, (group + 1) * size)]
            group_ids = input_ids[rows]
            logits = outputs.logits[rows, -1, :].to(dtype=torch.float32, device=input_ids.device)
            log_probs = torch.log_softmax(logits, dim=-1)
            group_scores = logits_processor(group_ids, log_probs, current_tokens=current, beam_group_idx=group)
            if processed is not None:
                processed[rows] = group_scores
            totals = (group_scores + beam_scores[rows].unsqueeze(-1)).view(batch, -1)
            top_scores, top = torch.topk(totals, per_beam * size, dim=1, largest=True, sorted=True)
            vocab = log_probs.shape[-1]
            origins = torch.div(top, vocab, rounding_mode="floor")
            picked = scorer.process(group_ids, top_scores, top % vocab, origins, pad=pad, eos=eos,
                                    beam_indices=sum(beam_indices, ()) if beam_indices is not None else None,
                                    group_index=group, decoder_prompt_len=prompt_len)
            beam_scores[rows] = picked["next_beam_scores"]
            chosen = picked["next_beam_indices"]
            if beam_indices is not None:
                beam_indices[group] = tuple(beam_indices[group][chosen[i]] + (chosen[i],)
                                            for i in range(len(beam_indices[0])))
            input_ids[rows] = group_ids[chosen]
            current[rows] = picked["next_beam_tokens"]
            reorder[rows] = beams * torch.div(chosen, size, rounding_mode="floor") + group * size + chosen % size
        recorder.add(processed, outputs.logits[:, -1, :], outputs)
        del outputs
        input_ids = torch.cat([input_ids, current[:, None]], dim=-1)
        reorder_cache(self, model_kwargs, reorder)
        if scorer.is_done or bool(stopping_criteria(input_ids, recorder.scores).all()):
            break
    result = scorer.finalize(input_ids, beam_scores, stopping_criteria.max_length, pad=pad, eos=eos,
                             beam_indices=sum(beam_indices, ()) if beam_indices is not None else None,
                             decoder_prompt_len=prompt_len)
    return _legacy_output(self, result, config, recorder, model_kwargs)


def _legacy_output(model, result, config, recorder, model_kwargs):
    if not config.return_dict_in_generate:
        return result["sequences"]
    name = model._cache_argument()
    return output_for(True, model._is_encoder_decoder, result["sequences"],
                      cache=model_kwargs.get(name) if name else None,
                      encoder_outputs=model_kwargs.get("encoder_outputs"),
                      sequences_scores=result["sequence_scores"] if config.output_scores else None,
                      beam_indices=result["beam_indices"], **recorder.fields())


def constrained_beam_search(self, input_ids, logits_processor, stopping_criteria, generation_config,
                            synced_gpus=False, streamer=None, **model_kwargs):
    """Beam search whose output must satisfy `constraints` / `force_words_ids`."""
    config = generation_config
    pad, eos = config._pad_token_tensor, config._eos_token_tensor
    beams = config.num_beams
    batch = input_ids.shape[0] // beams
    prompt_len = input_ids.shape[1]
    scorer = _ConstrainedScorer(build_constraints(config), batch, beams, config.length_penalty,
                                config.early_stopping, config.num_return_sequences, max_length=config.max_length,
                                device=input_ids.device)
    per_beam, growing, recorder = _beam_loop_setup(self, input_ids, config, model_kwargs)
    track = config.return_dict_in_generate and config.output_scores
    beam_indices = tuple(() for _ in range(input_ids.shape[0])) if track else None
    beam_scores = torch.zeros((batch, beams), dtype=torch.float, device=input_ids.device)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    first = True
    while True:
        outputs = _step_logits(self, input_ids, config, model_kwargs, growing, first)
        first = False
        logits = outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32, device=input_ids.device)
        processed = logits_processor(input_ids, torch.log_softmax(logits, dim=-1))
        totals = processed + beam_scores[:, None].expand_as(processed)
        recorder.add(totals, logits, outputs)
        del outputs
        vocab = totals.shape[-1]
        top_scores, top = torch.topk(totals.view(batch, -1), per_beam * beams, dim=1, largest=True, sorted=True)
        picked = scorer.process_constrained(input_ids, top_scores, top % vocab, (top / vocab).long(), totals.clone(),
                                            pad=pad, eos=eos, beam_indices=beam_indices,
                                            decoder_prompt_len=prompt_len)
        beam_scores = picked["next_beam_scores"]
        chosen = picked["next_beam_indices"]
        input_ids = torch.cat([input_ids[chosen, :], picked["next_beam_tokens"][:, None]], dim=-1)
        reorder_cache(self, model_kwargs, chosen)
        if beam_indices is not None:
            beam_indices = tuple(beam_indices[chosen[i]] + (chosen[i],) for i in range(len(beam_indices)))
        if scorer.is_done or bool(stopping_criteria(input_ids, recorder.scores).all()):
            break
    result = scorer.finalize(input_ids, beam_scores, stopping_criteria.max_length, pad=pad, eos=eos,
                             beam_indices=beam_indices, decoder_prompt_len=prompt_len)
    return _legacy_output(self, result, config, recorder, model_kwargs)
