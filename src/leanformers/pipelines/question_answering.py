"""question-answering: the span of a context that answers a question (extractive QA, as transformers 4.55).

A long context is cut into overlapping spans (max_seq_len tokens, doc_stride tokens of overlap); the best start/end
pairs of every span compete, and answers that are the same text add up their scores.
"""

from __future__ import annotations

import types
from collections.abc import Iterable

import numpy as np

from ..errors import TokenizerError
from .base import ChunkPipeline, require_text
from .errors import PipelineInputError
from .text_classification import accepts_use_cache


class SquadExample:
    """A question and its context (the fields of transformers' SquadExample that the pipeline reads)."""

    def __init__(self, qas_id, question_text, context_text, answer_text=None, start_position_character=None,
                 title=None, answers=None, is_impossible=False):
        self.qas_id = qas_id
        self.question_text = question_text
        self.context_text = context_text
        self.answer_text = answer_text
        self.title = title
        self.answers = answers or []
        self.is_impossible = is_impossible


def decode_spans(start, end, topk: int, max_answer_len: int, undesired_tokens):
    """The topk (start, end) token pairs by start * end probability, end >= start, at most max_answer_len long,
    both on allowed tokens -> (starts, ends, scores)."""
    start, end = np.atleast_2d(start), np.atleast_2d(end)
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))  # (1, seq, seq)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if topk == 1:
        order = [np.argmax(flat)]
    elif len(flat) < topk:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, topk)[0:topk]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    allowed = undesired_tokens.nonzero()  # (rows, columns): row indexes (all 0) count as allowed too, as upstream
    keep = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(start, end, p_mask, attention_mask, min_null_score=1000000, top_k=1,
                       handle_impossible_answer=False, max_answer_len=15):
    """Softmax the start/end logits over the tokens that may hold an answer, then pick the best spans."""
    allowed = np.abs(np.array(p_mask) - 1)
    if attention_mask is not None:
        allowed = allowed & attention_mask
    masked = allowed == 0.0
    start = np.where(masked, -10000.0, start)
    end = np.where(masked, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0  # the CLS position only stands for "no answer"
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, allowed)
    return starts, ends, scores, min_null_score


class QuestionAnsweringPipeline(ChunkPipeline):
    """question + context -> {"score", "start", "end", "answer"} (a list of them when top_k > 1)."""

    task_name = "question-answering"
    default_input_names = "question,context"
    handle_impossible_answer = False

    @staticmethod
    def create_sample(question, context):
        if isinstance(question, list):
            return [SquadExample(None, q, c) for q, c in zip(question, context)]
        return SquadExample(None, question, context)

    def _sanitize_parameters(self, padding=None, topk=None, top_k=None, doc_stride=None, max_answer_len=None,
                             max_seq_len=None, max_question_len=None, handle_impossible_answer=None,
                             align_to_words=None, **kwargs):
        preprocess = {key: value for key, value in (("padding", padding), ("doc_stride", doc_stride),
                                                    ("max_question_len", max_question_len),
                                                    ("max_seq_len", max_seq_len)) if value is not None}
        postprocess = {}
        top_k = topk if top_k is None else top_k
        if top_k is not None:
            if top_k < 1:
                raise PipelineInputError(f"top_k must be >= 1 (got {top_k}).")
            postprocess["top_k"] = top_k
        if max_answer_len is not None:
            if max_answer_len < 1:
                raise PipelineInputError(f"max_answer_len must be >= 1 (got {max_answer_len}).")
            postprocess["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            postprocess["handle_impossible_answer"] = handle_impossible_answer
        if align_to_words is not None:
            postprocess["align_to_words"] = align_to_words
        return preprocess, {}, postprocess

    # ------------------------------------------------------------------ inputs
    def __call__(self, *args, **kwargs):
        examples = self._examples(args, kwargs)
        for key in ("question", "context", "X", "data"):
            kwargs.pop(key, None)
        if isinstance(examples, list) and len(examples) == 1:
            return super().__call__(examples[0], **kwargs)
        return super().__call__(examples, **kwargs)

    def _examples(self, args, kwargs):
        """The calling forms of transformers: (question=, context=), a dict, a list of dicts, two strings."""
        if len(args) == 1:
            inputs = args[0]
        elif len(args) == 2 and all(isinstance(arg, str) for arg in args):
            inputs = [{"question": args[0], "context": args[1]}]
        elif args:
            inputs = list(args)
        elif "X" in kwargs or "data" in kwargs:
            inputs = kwargs.get("X", kwargs.get("data"))
        elif "question" in kwargs and "context" in kwargs:
            inputs = self._zip_questions(kwargs["question"], kwargs["context"])
        else:
            raise PipelineInputError("question-answering needs question= and context= (or a dict / list of dicts "
                                     "with 'question' and 'context').")
        if isinstance(inputs, types.GeneratorType) or (hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__")
                                                       and not isinstance(inputs, (list, tuple, dict, str))):
            return (self._normalize(item) for item in inputs)
        if isinstance(inputs, (dict, SquadExample)):
            inputs = [inputs]
        elif isinstance(inputs, Iterable) and not isinstance(inputs, str):
            inputs = list(inputs)
        else:
            raise PipelineInputError(f"Invalid question-answering input {inputs!r:.80}: pass question= and context=.")
        return [self._normalize(item) for item in inputs]

    @staticmethod
    def _zip_questions(question, context):
        for name, value in (("question", question), ("context", context)):
            if value is None:
                raise PipelineInputError(f"The {name} is None: pass a string (or a list of strings).")
        if isinstance(question, list) and isinstance(context, str):
            return [{"question": q, "context": context} for q in question]
        if isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise PipelineInputError(f"{len(question)} questions but {len(context)} contexts: pass one context "
                                         f"per question, or one context for all.")
            return [{"question": q, "context": c} for q, c in zip(question, context)]
        if isinstance(question, str) and isinstance(context, str):
            return [{"question": question, "context": context}]
        raise PipelineInputError("question and context must be strings or lists of strings.")

    @staticmethod
    def _normalize(item):
        if isinstance(item, SquadExample) or (hasattr(item, "question_text") and hasattr(item, "context_text")):
            return item
        if not isinstance(item, dict):
            raise PipelineInputError(f"{item!r:.80} is not a question-answering input: pass a dict with 'question' "
                                     f"and 'context'.")
        for key in ("question", "context"):
            if key not in item:
                raise PipelineInputError("Each input needs both keys {'question': ..., 'context': ...}.")
            require_text(item[key], f"`{key}`")
        return SquadExample(None, item["question"], item["context"])

    def preprocess(self, example, padding="do_not_pad", doc_stride=None, max_question_len=64, max_seq_len=None):
        if isinstance(example, dict):
            example = self._normalize(example)
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise PipelineInputError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len}).")
        question_first = self.tokenizer.padding_side == "right"
        encoded = self._encode(example, question_first, padding, max_seq_len, doc_stride)
        names = list(self.tokenizer.model_input_names)
        count = len(encoded["input_ids"])
        for index in range(count):
            ids = encoded["input_ids"][index]
            p_mask = [token != 1 if question_first else 0 for token in encoded.sequence_ids(index)]
            if self.tokenizer.cls_token_id is not None:
                for position in np.nonzero(np.array(ids) == self.tokenizer.cls_token_id)[0]:
                    p_mask[position] = 0
            model_inputs = {name: encoded[name][index] for name in names if name in encoded}
            yield {"example": example, "is_last": index == count - 1, "p_mask": p_mask,
                   "attention_mask": encoded["attention_mask"][index] if "attention_mask" in encoded else None,
                   "encoding": encoded[index], "model_inputs": model_inputs}

    def _encode(self, example, question_first, padding, max_seq_len, doc_stride):
        if not self.tokenizer.is_fast:
            # the answer is cut from the context by character offsets, which these tokenizers cannot give
            raise PipelineInputError(
                f"question-answering needs a tokenizer that returns character offsets; {type(self.tokenizer).__name__}"
                f" does not (its text step rewrites the text). Call the model's question-answering head directly, or "
                f"use a model whose tokenizer has a tokenizer.json.")
        first, second = ((example.question_text, example.context_text) if question_first
                         else (example.context_text, example.question_text))
        try:
            return self.tokenizer(text=first, text_pair=second, padding=padding,
                                  truncation="only_second" if question_first else "only_first",
                                  max_length=max_seq_len, stride=doc_stride, return_token_type_ids=True,
                                  return_overflowing_tokens=True, return_offsets_mapping=True,
                                  return_special_tokens_mask=True)
        except TokenizerError as err:
            question_tokens = len(self.tokenizer(example.question_text, add_special_tokens=False)["input_ids"])
            room = max_seq_len - question_tokens - self.tokenizer.num_special_tokens_to_add(pair=True)
            raise PipelineInputError(
                f"The context cannot be split into spans: the question takes {question_tokens} tokens, which "
                f"leaves {max(room, 0)} of max_seq_len={max_seq_len} for the context, and each span must hold more "
                f"than doc_stride={doc_stride} context tokens. Shorten the question, raise max_seq_len or lower "
                f"doc_stride.") from err

    def _forward(self, model_inputs, **forward_params):
        if accepts_use_cache(self.model):
            model_inputs = {**model_inputs, "use_cache": False}
        output = self.model(**model_inputs)
        if isinstance(output, dict):
            return {"start": output["start_logits"], "end": output["end_logits"]}
        return {"start": output[0], "end": output[1]}

    sequence_outputs = ("start", "end")

    # ------------------------------------------------------------------ outputs
    def postprocess(self, model_outputs, top_k=1, handle_impossible_answer=False, max_answer_len=15,
                    align_to_words=True):
        min_null_score = 1000000  # large and positive: any real span's null score replaces it
        answers = []
        for output in model_outputs:
            start, end = output["start"].float()[None], output["end"].float()[None]
            attention = None if output["attention_mask"] is None else np.array([output["attention_mask"]])
            pre_topk = top_k * 2 + 10 if align_to_words else top_k  # aligning to words may drop some
            starts, ends, scores, min_null_score = select_starts_ends(
                start.numpy(), end.numpy(), np.array([output["p_mask"]]), attention, min_null_score, pre_topk,
                handle_impossible_answer, max_answer_len)
            sequence_index = 1 if self.tokenizer.padding_side == "right" else 0
            context = output["example"].context_text
            for s, e, score in zip(starts, ends, scores):
                first, last = self.get_indices(output["encoding"], s, e, sequence_index, align_to_words)
                same = self.get_answer(answers, context[first:last])
                if same:
                    same["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": first, "end": last, "answer": context[first:last]})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    @staticmethod
    def get_answer(answers: list[dict], target: str):
        for answer in answers:
            if answer["answer"].lower() == target.lower():
                return answer
        return None

    @staticmethod
    def get_indices(encoding, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
        """Character span of tokens s..e: whole words when align_to_words (and the tokenizer knows words)."""
        s, e = int(s), int(e)
        if align_to_words:
            try:
                first = encoding.word_to_chars(encoding.token_to_word(s), sequence_index=sequence_index)[0]
                last = encoding.word_to_chars(encoding.token_to_word(e), sequence_index=sequence_index)[1]
                return first, last
            except Exception:  # noqa: BLE001 - tokens without a word (or tokenizers without words): use offsets
                pass
        return encoding.offsets[s][0], encoding.offsets[e][1]
