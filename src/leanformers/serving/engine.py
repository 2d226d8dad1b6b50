"""The scheduler: iteration-level (continuous) batching of generation requests over one causal LM.

One worker thread owns the model. Each iteration it (1) drops cancelled requests, (2) prefills at most
`prefill_chunk` prompt tokens (chunked prefill: a long prompt is prefilled a chunk per iteration; several short ones
share an iteration, in one left-padded forward pass unless batch invariance asks for a pass each) - or, while no
request is decoding, up to IDLE_CHUNKS chunks, since no stream waits on them, (3) runs one decoding step over every
running request. So a new prompt, however long, delays the running streams by one chunk per step, never more. A
prompt whose prefill is done moves its keys and values into a free slot and joins the decoding batch; only one prompt
is part-way at a time, so its own growing cache adds at most one slot's worth to the fixed slot memory. A request
leaves the batch the moment it finishes or is cancelled; its slot is reused at once. Requests wait in a bounded queue
while every slot is taken.

With `invariant=True` the forward passes run in generation/batch_invariant.py's canonical forms, so a request's
greedy tokens are bitwise those of `model.generate(..., do_sample=False, batch_invariant=True)` run alone, whatever
else is in the batch: every chunk but a prompt's last is a multiple of QUERY_BLOCK tokens and a last chunk is never
a single token, so a chunk's attention makes the same calls as the prompt's prefill in one pass. Without it each
step uses the fastest kernels for its shapes: a request alone whose prompt fits in one chunk gets generate()'s own
tokens; a longer prompt, or one in a batch, may take another token where two logits are within rounding.

With `compile=True` on CPU every forward pass, prompt or decoding step, is one call of serving/exported_step.py's
compiled library (with `release_weights`, for a server's own model, the model gives up each weight the library holds
packed); on CUDA every decoding step replays serving/compiled_step.py's CUDA graphs (prompts run eagerly).
With `prefix_cache=TOKENS` an admitted prompt starts from the kept keys and values of its longest kept prefix
(serving/prefixes.py) and prefills only the rest; several such prompts still share one padded pass.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from dataclasses import dataclass, field

import torch

from ..allocator import give_back_freed_memory
from ..cache import DynamicCache
from ..generation.batch_invariant import QUERY_BLOCK, batch_invariant
from . import compiled_step
from .compiled_step import CompiledStep
from .exported_step import ExportedStep
from .metrics import Metrics
from .prefixes import PREFIX_BLOCK, PrefixCache
from .slots import KVSlots, write_blocks


DEFAULT_CHUNK = 128  # prompt tokens prefilled between two decoding steps
# While nothing decodes, an iteration may prefill this many chunks: a burst of prompts then joins the batch together
# instead of over many steps of a part-full batch (32 chat prompts of ~45 tokens at once, 2 cores, 64 tokens each:
# 171 -> 209 tokens/s eager and 208 -> 226 with compiled steps)
IDLE_CHUNKS = 16


class _Cancelled(Exception):
    """A request was cancelled before its prefill."""


class QueueFullError(Exception):
    """The waiting queue is at its bound (answered with 429)."""


class ShuttingDownError(Exception):
    """The engine no longer takes requests (answered with 503)."""


@dataclass
class GenerationRequest:
    """One sequence to generate, with its sampling settings and the callback that receives its events.

    `emit(kind, payload)` is called from the worker thread with ("token", (id, logprob entry or None)) and finally
    ("done", finish_reason) where finish_reason is "stop", "length", "cancelled" or "error: ...".
    """

    prompt_ids: list
    max_tokens: int
    emit: object
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    top_logprobs: int | None = None        # None: no logprobs; 0..20: logprob of the token and that many others
    eos_ids: frozenset = frozenset()
    cancelled: bool = False
    id: int = field(default_factory=itertools.count().__next__)
    # worker-side state
    generated: list = field(default_factory=list)
    length: int = 0                        # tokens held in the request's slot
    slot: int = -1
    generator: torch.Generator | None = None
    submitted: float = field(default_factory=time.monotonic)
    prefill_cache: DynamicCache | None = None  # keys and values of the chunks prefilled so far
    prefilled: int = 0                         # prompt tokens prefilled so far
    reused: int = 0                            # of them, taken from the prefix cache
    reused_blocks: list = field(default_factory=list)  # the prefix cache's blocks of those tokens, until prefilled

    def cancel(self):
        self.cancelled = True


class Engine:
    """Continuous batching over `model` with at most `max_batch` running and `max_queue` waiting requests."""

    def __init__(self, model, max_batch: int = 8, max_queue: int = 64, max_len: int = 2048,
                 invariant: bool = False, metrics: Metrics | None = None, prefill_chunk: int = DEFAULT_CHUNK,
                 compile: bool = False, prefix_cache: int = 0, release_weights: bool = False):
        if prefill_chunk < QUERY_BLOCK or prefill_chunk % QUERY_BLOCK:
            raise ValueError(f"prefill_chunk={prefill_chunk} must be a positive multiple of {QUERY_BLOCK} tokens "
                             f"(e.g. {DEFAULT_CHUNK}).")
        if compile and invariant:
            raise ValueError("compile and batch invariance exclude each other: a compiled step fuses the "
                             "operations batch invariance keeps in their canonical form; choose one.")
        if prefix_cache and invariant:
            raise ValueError("a prefix cache and batch invariance exclude each other: a prompt prefilled from a "
                             "reused prefix runs its attention in other kernel calls; choose one.")
        self.model, self.max_batch, self.max_queue, self.max_len = model, max_batch, max_queue, max_len
        self.invariant, self.prefill_chunk = invariant, prefill_chunk
        self.metrics = metrics or Metrics()
        self.slots = KVSlots(max_batch, max_len)
        self.prefixes = PrefixCache(prefix_cache) if prefix_cache > 0 else None
        if compile and not getattr(model, "_supports_compiled_decoding", False):
            raise ValueError(f"compile: {type(model).__name__} has no compiled decoding step; serve it without "
                             f"--compile.")
        fixed = compiled_step.fixed_shapes(next(model.parameters()).device)
        self._exported = ExportedStep(model, release_weights=release_weights) if compile and not fixed else None
        self._compiled_step = CompiledStep(model, self.slots) if compile and fixed else None
        if self._exported is not None:  # the library writes prompts into the slots: they exist from the start
            self.slots.allocate_like(self._exported.buffers(1, 1))
        self.waiting: collections.deque[GenerationRequest] = collections.deque()
        self.prefilling: list[GenerationRequest] = []   # admitted (a slot is kept for each), prompt not done
        self.running: list[GenerationRequest] = []
        self.accepting = True
        self._wake = threading.Condition()
        self._stop = False
        self._device = next(model.parameters()).device
        self._cache_kw = "cache" if model._cache_argument() == "cache" else "past_key_values"
        self._thread = threading.Thread(target=self._loop, name="leanformers-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ requests in
    def submit(self, requests: list[GenerationRequest]):
        """Queue requests (all or none); QueueFullError when they do not fit, ShuttingDownError when stopping."""
        with self._wake:
            if not self.accepting:
                raise ShuttingDownError("The server is shutting down and takes no new requests.")
            if len(self.waiting) + len(requests) > self.max_queue:
                raise QueueFullError(f"The queue is full ({self.max_queue} waiting requests); retry later.")
            self.waiting.extend(requests)
            self.metrics.queue_depth = len(self.waiting)
            self._wake.notify()

    def wake(self):
        with self._wake:
            self._wake.notify()

    def shutdown(self, timeout: float = 10.0):
        """Stop taking requests, cancel what is left, stop the worker (bounded by `timeout` seconds)."""
        with self._wake:
            self.accepting = False
            for request in [*self.waiting, *self.prefilling, *self.running]:
                request.cancel()
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout)

    @property
    def kv_bytes(self) -> int:
        """The key/value memory: the slots, and the prefix cache's capacity at the same bytes per token."""
        tokens = self.max_batch * self.max_len
        kept = self.prefixes.capacity_blocks * PREFIX_BLOCK if self.prefixes else 0
        return self.slots.allocated_bytes * (tokens + kept) // tokens

    # ------------------------------------------------------------------ worker
    def _loop(self):
        while True:
            with self._wake:
                while not self._stop and not self.waiting and not self.running and not self.prefilling:
                    self._wake.wait(0.5)
                if self._stop and not self.running and not self.waiting and not self.prefilling:
                    return
            self._drop_cancelled()
            self._prefill_budget()
            if self.running:
                try:
                    self._decode_step()
                except Exception as err:  # noqa: BLE001 - a failed step ends its requests, never the server
                    for request in self.running:
                        request.emit("done", f"error: {type(err).__name__}: {err}")
                    self.running.clear()

    def _admit(self) -> GenerationRequest | None:
        """The next waiting request, when a slot is free for it."""
        with self._wake:
            request = None
            if self.waiting and len(self.running) + len(self.prefilling) < self.max_batch:
                request = self.waiting.popleft()
                self.prefilling.append(request)
            self.metrics.queue_depth = len(self.waiting)
        if request is not None:
            self._reuse_prefix(request)
        return request

    def _reuse_prefix(self, request: GenerationRequest):
        """Start `request` from the keys and values of the longest kept prefix of its prompt."""
        if self.prefixes is None:
            return
        request.reused_blocks = self.prefixes.lookup(request.prompt_ids)
        request.prefilled = request.reused = len(request.reused_blocks) * PREFIX_BLOCK
        self.metrics.reused_prompt_tokens += request.reused

    def _prefill_budget(self):
        """Prefill the iteration's budget of prompt tokens (`_plan_prefill`): the unfinished prompt first, then newly
        admitted ones.

        Without batch invariance, several whole prompts of up to a chunk each run as one left-padded forward pass:
        products over more rows run faster per row (32 requests of ~45 prompt tokens arriving at once on 2 cores:
        118 -> 139 tokens/s). Longer prompts run alone, so that padding to them never multiplies the work.
        """
        plan = self._plan_prefill()
        together = [request for request, take in plan if not self.invariant and not request.cancelled
                    and request.prefilled == request.reused  # nothing run yet, the rest of the prompt now
                    and 0 < take == len(request.prompt_ids) - request.reused <= self.prefill_chunk
                    and (self._exported is None or request.reused + self.prefill_chunk <= self.max_len)]
        if len(together) < 2:
            together = []
        for request, take in plan:
            if request not in together:
                self._guarded_prefill([request], self._prefill_chunk, request, take)
        if together:
            self._guarded_prefill(together, self._prefill_together, together)
            give_back_freed_memory()  # the prompts' caches, now in their slots: a burst's peak does not stay resident

    def _plan_prefill(self) -> list:
        """(request, prompt tokens to prefill now) pairs within the iteration's budget, admitting waiting requests.

        Every chunk but a prompt's last is a multiple of QUERY_BLOCK tokens, and a last chunk is never one token."""
        budget = self.prefill_chunk * (1 if self.running else IDLE_CHUNKS)
        index, plan = 0, []
        while budget > 0:
            request = self.prefilling[index] if index < len(self.prefilling) else self._admit()
            if request is None:
                break
            left = len(request.prompt_ids) - request.prefilled
            take = left if left <= budget else budget - budget % QUERY_BLOCK
            if left - take == 1:  # no lone last token: its attention would take another kernel path
                take += 1
            if take == 0 and left > 0:
                break
            plan.append((request, take))
            budget, index = budget - take, index + 1
        return plan

    def _guarded_prefill(self, requests, run, *args):
        """run(*args); a failure ends the requests it prefills (and only those)."""
        try:
            run(*args)
        except Exception as err:  # noqa: BLE001 - a failed prefill ends its own requests only
            for request in requests:
                if request in self.prefilling:
                    self.prefilling.remove(request)
                request.prefill_cache = None
                if request in self.running:
                    self.running.remove(request)
                request.emit("done", "cancelled" if isinstance(err, _Cancelled) else
                             f"error: {type(err).__name__}: {err}")

    @torch.inference_mode()  # a finished request's slot is refilled by moving another's (inference) tensors
    def _drop_cancelled(self):
        for request in [r for r in self.prefilling if r.cancelled]:
            self.prefilling.remove(request)
            request.prefill_cache = None
            request.emit("done", "cancelled")
        for request in [r for r in self.running if r.cancelled]:
            self._finish(request, "cancelled")

    def _context(self):
        return batch_invariant(self.invariant)

    @torch.inference_mode()
    def _prefill_chunk(self, request: GenerationRequest, take: int):
        """Run the next `take` prompt tokens of `request`; after its last chunk it joins the decoding batch."""
        if request.cancelled:
            raise _Cancelled
        if not request.prompt_ids:
            raise ValueError("the prompt is empty")
        started = time.monotonic()
        begin = request.prefilled
        ids = torch.tensor([request.prompt_ids[begin:begin + take]], dtype=torch.long, device=self._device)
        if self._exported is not None:
            logits = self._exported_chunk(request, ids)
        else:
            if request.prefill_cache is None:
                request.prefill_cache = DynamicCache(_padded_prefixes([request], request.reused))
            with self._context():
                out = self.model(input_ids=ids, return_dict=True, **self._prefill_kwargs(request.prefill_cache))
            logits = out.logits[0, -1]
        request.prefilled += take
        self.metrics.observe("prefill_seconds", time.monotonic() - started)
        if request.prefilled == len(request.prompt_ids):
            self._join(request, request.prefill_cache, 0, 0, logits)

    def _exported_chunk(self, request: GenerationRequest, ids: torch.Tensor) -> torch.Tensor:
        """The exported step over the next chunk of one prompt, into key/value buffers of its own; the logits of
        the chunk's last token."""
        if request.prefill_cache is None:  # buffers as long as the prompt, its reused prefix written first
            request.prefill_cache = self._exported.buffers(1, len(request.prompt_ids))
            write_blocks(*zip(*request.prefill_cache), 0, request.reused_blocks, PREFIX_BLOCK)
            request.reused_blocks = []
        keys, values = zip(*request.prefill_cache)
        begin, take = request.prefilled, ids.shape[1]
        return self._exported(ids, torch.tensor([begin]), torch.tensor([take - 1]), begin + take, keys, values)[0]

    @torch.inference_mode()
    def _prefill_together(self, requests: list):
        """Prefill the rest of several prompts in one forward pass; each then joins the batch. The rows' reused
        prefixes (none: 0 tokens) come first, padded to the longest; the new tokens are left-padded to the longest."""
        started = time.monotonic()
        if self._exported is not None:
            self._exported_together(requests)
            self.metrics.observe("prefill_seconds", time.monotonic() - started)
            return
        reused = max(request.reused for request in requests)
        longest = max(len(request.prompt_ids) - request.reused for request in requests)
        ids = torch.zeros(len(requests), longest, dtype=torch.long)
        mask = torch.zeros(len(requests), reused + longest, dtype=torch.long)
        for row, request in enumerate(requests):
            new = request.prompt_ids[request.reused:]
            ids[row, longest - len(new):] = torch.tensor(new)
            mask[row, :request.reused] = mask[row, reused + longest - len(new):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, reused:]  # each prompt counts from 0 at its first token
        cache = DynamicCache(_padded_prefixes(requests, reused))
        out = self.model(input_ids=ids.to(self._device), attention_mask=mask.to(self._device),
                         position_ids=positions.to(self._device), return_dict=True, **self._prefill_kwargs(cache))
        self.metrics.observe("prefill_seconds", time.monotonic() - started)
        for row, request in enumerate(requests):
            request.prefilled = len(request.prompt_ids)
            start = reused + longest - (request.prefilled - request.reused)
            self._join(request, cache, row, start, out.logits[row, -1], head=request.reused)

    def _exported_together(self, requests: list):
        """`_prefill_together` through the exported step, written straight into the slots the prompts join (the free
        ones after the running requests, in order): each row's new tokens right after its own reused prefix, padded
        at the end (a prompt's tokens never attend to the padding after them, which a decoding step overwrites
        before it is ever read). `_prefill_budget` groups only prompts whose padded rows fit in a slot."""
        news = [request.prompt_ids[request.reused:] for request in requests]
        longest, first = max(len(new) for new in news), len(self.running)
        ids = torch.zeros(len(requests), longest, dtype=torch.long)
        for row, (request, new) in enumerate(zip(requests, news)):
            ids[row, :len(new)] = torch.tensor(new)
            write_blocks(self.slots.keys, self.slots.values, first + row, request.reused_blocks, PREFIX_BLOCK)
            request.reused_blocks = []
        keys, values = ([buffer[first:first + len(requests)] for buffer in buffers]
                        for buffers in (self.slots.keys, self.slots.values))
        logits = self._exported(ids, torch.tensor([r.reused for r in requests]),
                                torch.tensor([len(new) - 1 for new in news]),
                                max(r.reused for r in requests) + longest, keys, values)
        for row, request in enumerate(requests):
            request.prefilled = request.length = len(request.prompt_ids)
            if first + row != len(self.running):  # a request that joined before it finished at once
                self.slots.move(first + row, len(self.running), request.length)
            self._start_decoding(request, logits[row])

    def _prefill_kwargs(self, cache) -> dict:
        kwargs = {self._cache_kw: cache, "use_cache": True}
        if self.model._supports_logits_to_keep():
            kwargs["logits_to_keep"] = 1
        return kwargs

    def _join(self, request: GenerationRequest, cache, row: int, start: int, logits: torch.Tensor, head: int = 0):
        """Move a prefilled prompt's keys and values (`row` of `cache`: its first `head` positions, then those from
        `start` on) into a free slot and let the request join the decoding batch with its first token chosen from
        `logits`."""
        request.length = self.slots.store(len(self.running), cache, row, start, head)
        self._start_decoding(request, logits)

    def _start_decoding(self, request: GenerationRequest, logits: torch.Tensor):
        """Let a prefilled request, whose keys and values are in slot len(running), join the decoding batch with its
        first token chosen from `logits`."""
        self.prefilling.remove(request)
        request.slot = len(self.running)
        if self.prefixes is not None:
            self.prefixes.insert(request.prompt_ids, self.slots, request.slot)
        request.prefill_cache = None
        if request.seed is not None:
            request.generator = torch.Generator(device="cpu").manual_seed(int(request.seed))
        self.running.append(request)
        self.metrics.observe("ttft", time.monotonic() - request.submitted)
        self.metrics.prompt_tokens += len(request.prompt_ids)
        self._take(request, logits.float().cpu())  # sampled on the CPU, with the request's CPU generator

    @torch.inference_mode()
    def _decode_step(self):
        rows = self.running
        lengths = torch.tensor([r.length for r in rows], dtype=torch.long)
        tokens = torch.tensor([[r.generated[-1]] for r in rows], dtype=torch.long, device=self._device)
        self.metrics.observe("batch_size", len(rows))
        if self._exported is not None:
            logits = self._exported(tokens, lengths, torch.zeros_like(lengths), int(lengths.max()) + 1,
                                    self.slots.keys, self.slots.values).float()
        elif self._compiled_step is not None:
            logits = self._compiled_step(tokens, lengths).float().cpu()
        else:
            logits = self._eager_step(tokens, lengths)
        for request in rows:  # every row's new key is stored before any row finishes and moves another's slot
            request.length += 1
        for request, row, greedy in zip(list(rows), logits, _greedy_tokens(logits, rows)):
            self._take(request, row, greedy)

    def _eager_step(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        key_len = int(lengths.max()) + 1
        mask = (torch.arange(key_len)[None] <= lengths[:, None]).long()  # (batch, keys): each row's own length
        with self._context():
            out = self.model(input_ids=tokens, attention_mask=mask.to(self._device),
                             position_ids=lengths[:, None].to(self._device), use_cache=True, return_dict=True,
                             **{self._cache_kw: self.slots.step_cache(lengths)})
        return out.logits[:, -1].float().cpu()

    def warm_up(self, timeout: float = 3600.0):
        """Decode a two-token prompt for two steps, so that compiling happens before the first real request."""
        done, reasons = threading.Event(), []

        def emit(kind, payload):
            if kind == "done":
                reasons.append(payload)
                done.set()
        self.submit([GenerationRequest(prompt_ids=[0, 0], max_tokens=2, temperature=0.0, emit=emit)])
        if not done.wait(timeout):
            raise TimeoutError(f"the warm-up request took more than {timeout:.0f} s")
        if reasons[0] not in ("length", "stop"):
            raise RuntimeError(f"the warm-up request failed: {reasons[0]}")

    def _take(self, request: GenerationRequest, logits: torch.Tensor, greedy: int | None = None):
        """Choose the next token of `request` from its logits (`greedy`: their argmax, when known), emit it, and
        finish the request when it is done."""
        token, entry = choose_token(logits, request, greedy)
        request.generated.append(token)
        self.metrics.completion_tokens += 1
        request.emit("token", (token, entry))
        if token in request.eos_ids:
            self._finish(request, "stop")
        elif len(request.generated) >= request.max_tokens or request.length >= self.max_len:
            self._finish(request, "length")

    def _finish(self, request: GenerationRequest, reason: str):
        index = self.running.index(request)
        last = self.running.pop()
        if last is not request:  # the last running request moves into the freed slot: slots stay 0..batch-1
            self.slots.move(last.slot, index, last.length)
            last.slot = index
            self.running[index] = last
        self.metrics.observe("latency", time.monotonic() - request.submitted)
        request.emit("done", reason)


def _padded_prefixes(requests: list, reused: int) -> list:
    """Per layer, the (keys, values) of every request's reused prefix blocks, zero-padded at the end to `reused`
    tokens (none when nothing is reused); the requests' references to the blocks are dropped."""
    if not reused:
        return []
    like = next(request.reused_blocks[0] for request in requests if request.reused_blocks)
    layers, _, heads, _, head_dim = like.shape
    padded = like.new_zeros(layers, 2, len(requests), heads, reused, head_dim)
    for row, request in enumerate(requests):
        for index, block in enumerate(request.reused_blocks):
            padded[:, :, row, :, index * PREFIX_BLOCK:(index + 1) * PREFIX_BLOCK] = block
        request.reused_blocks = []
    return [(layer[0], layer[1]) for layer in padded]


def _greedy_tokens(logits: torch.Tensor, rows: list) -> list:
    """The argmax of every row of (rows, vocabulary) float32 logits when a row decodes greedily (else Nones): numpy's
    argmax (first index, NaN first too) over all rows in one call, ~13 us a row where torch's takes ~60."""
    if any(request.temperature == 0 for request in rows):
        return logits.numpy().argmax(axis=1).tolist()
    return [None] * len(rows)


def choose_token(logits: torch.Tensor, request: GenerationRequest, greedy: int | None = None):
    """(token id, logprob entry or None) for one row of float32 logits (`greedy`: its argmax, when known)."""
    if request.temperature == 0:
        token = greedy if greedy is not None else int(logits.numpy().argmax())
    else:
        probs = (logits / request.temperature).softmax(-1)
        if request.top_p < 1.0:
            probs = _top_p(probs, request.top_p)
        token = int(torch.multinomial(probs, 1, generator=request.generator))
    if request.top_logprobs is None:
        return token, None
    logprobs = logits.log_softmax(-1)
    top = logprobs.topk(request.top_logprobs) if request.top_logprobs else None
    others = [] if top is None else list(zip(top.indices.tolist(), top.values.tolist()))
    return token, (float(logprobs[token]), others)


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of likeliest tokens whose probability reaches top_p (at least one)."""
    ordered, order = probs.sort(descending=True)
    outside = ordered.cumsum(-1) - ordered > top_p
    ordered[outside] = 0.0
    return torch.zeros_like(probs).scatter_(-1, order, ordered)
