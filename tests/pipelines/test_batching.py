"""Batching that wastes nothing: inputs ordered by length, each batch padded to its own longest, results in the
caller's order and equal to one-by-one runs; inputs as lists, generators (lazily), datasets and dataset columns;
the progress bar; no warnings."""

from __future__ import annotations

import logging
import random
import warnings

import datasets
import pytest

from leanformers.pipelines import KeyDataset, KeyPairDataset, PipelineInputError

from .conftest import assert_same

WORDS = "the cat sat on mat hello world where do i work my name is paris great".split()


def mixed_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice([1, 2, 3, 30, 60]))) for _ in range(count)]


class Recorder:
    """Wraps a pipeline's _forward to record the (batch, width) of every batch the model sees."""

    def __init__(self, pipe):
        self.pipe, self.shapes = pipe, []
        self.original = pipe._forward

    def __enter__(self):
        def forward(model_inputs, **kwargs):
            ids = model_inputs["input_ids"]
            self.shapes.append(tuple(ids.shape))
            return self.original(model_inputs, **kwargs)

        self.pipe._forward = forward
        return self

    def __exit__(self, *exc):
        del self.pipe._forward

    def padded_tokens(self) -> int:
        return sum(batch * width for batch, width in self.shapes)


def test_sorted_batches_pad_less_and_keep_the_order(ours):
    pipe = ours("text-classification", "bert-cls")
    texts = mixed_texts(40)
    one_by_one = pipe(texts, top_k=None)
    real_tokens = sum(len(pipe.tokenizer(text)["input_ids"]) for text in texts)
    with Recorder(pipe) as unsorted:
        in_order = pipe(texts, top_k=None, batch_size=8, sort_by_length=False)
    with Recorder(pipe) as ordered:
        by_length = pipe(texts, top_k=None, batch_size=8)
    assert_same(in_order, one_by_one)
    assert_same(by_length, one_by_one)
    assert [shape[0] for shape in ordered.shapes] == [8] * 5
    widths = [shape[1] for shape in ordered.shapes]
    assert widths == sorted(widths, reverse=True)  # longest first: each batch padded to its own longest
    assert ordered.padded_tokens() < unsorted.padded_tokens()
    assert ordered.padded_tokens() - real_tokens < 0.25 * (unsorted.padded_tokens() - real_tokens)


def test_batch_size_given_at_construction(tiny):
    import leanformers

    pipe = leanformers.pipeline("text-classification", model=tiny("bert-cls"), device="cpu", batch_size=4)
    texts = mixed_texts(10, seed=5)
    with Recorder(pipe) as recorder:
        results = pipe(texts, top_k=None)
    assert [shape[0] for shape in recorder.shapes] == [4, 4, 2]
    assert_same(results, [pipe(text, top_k=None, batch_size=1) for text in texts])


def test_chunks_of_one_input_are_batched_with_the_others(ours, legacy):
    """QA spans of long contexts and zero-shot hypotheses go through the same length-sorted batches."""
    from .legacy_cases import CASES

    pipe = ours("question-answering", "bert-qa")
    with Recorder(pipe) as recorder:
        result = pipe(*CASES["qa-long-context"][3], **CASES["qa-long-context"][4], batch_size=4)
    assert_same(result, legacy["qa-long-context"])
    assert len(recorder.shapes) < sum(shape[0] for shape in recorder.shapes)  # several spans per forward


def test_generator_is_read_lazily(ours):
    pipe = ours("text-classification", "bert-cls")
    taken = []

    def endless():
        while True:
            taken.append(len(taken))
            yield mixed_texts(1, seed=len(taken))[0]

    stream = pipe(endless(), batch_size=4)
    first = [next(stream) for _ in range(5)]
    assert len(first) == 5 and all(set(item) == {"label", "score"} for item in first)
    assert len(taken) <= 2 * 4 * 16  # at most two windows of sorted batches were read


def test_datasets_and_columns(ours):
    pipe = ours("text-classification", "bert-cls")
    texts = mixed_texts(10, seed=3)
    pairs = [{"text": t, "text_pair": u} for t, u in zip(texts, reversed(texts))]
    dataset = datasets.Dataset.from_dict({"text": texts, "other": list(reversed(texts))})
    expected = pipe(texts, top_k=2)
    for source in (KeyDataset(dataset, "text"), dataset["text"]):
        stream = pipe(source, top_k=2, batch_size=4)
        assert not isinstance(stream, list)
        assert_same(list(stream), expected)
    assert_same(list(pipe(KeyPairDataset(dataset, "text", "other"), batch_size=3)), pipe(pairs))


def test_progress_bar(tiny, capsys):
    import leanformers

    pipe = leanformers.pipeline("text-classification", model=tiny("bert-cls"), device="cpu", progress_bar=True)
    results = pipe(mixed_texts(12), batch_size=4)
    assert len(results) == 12
    assert "12/12" in capsys.readouterr().err


@pytest.mark.parametrize("task, model, inputs, kwargs", [
    ("text-classification", "bert-cls", mixed_texts(9), {}),
    ("ner", "bert-ner", mixed_texts(9), {"aggregation_strategy": "simple"}),
    ("zero-shot-classification", "bert-nli", mixed_texts(4), {"candidate_labels": ["cat", "paris"]}),
    ("fill-mask", "bert-mlm", ["the [MASK] sat", "hello [MASK] world"], {}),
    ("question-answering", "bert-qa", [{"question": "where do i work ?", "context": text}
                                       for text in mixed_texts(4)], {}),
    ("summarization", "bart", mixed_texts(4), {"max_new_tokens": 4}),
    # the model's generation config sets max_length: a call's max_length replaces it (4.55 is quiet too)
    ("summarization", "bart-summarizer", mixed_texts(4), {"max_length": 20}),
    ("summarization", "bart-summarizer", mixed_texts(4), {"max_new_tokens": 5}),
    # max_new_tokens beside task_specific_params' max_length (4.55 is quiet), both in one call (4.55 warns each call)
    ("summarization", "t5", mixed_texts(3), {"max_new_tokens": 6}),
    ("translation_en_to_de", "t5", mixed_texts(3), {"max_new_tokens": 4}),
    ("summarization", "bart", mixed_texts(3), {"max_new_tokens": 4, "max_length": 20}),
    ("text-generation", "gpt2", mixed_texts(4), {"max_new_tokens": 3, "do_sample": False}),
    # max_new_tokens beside the generation config's max_length (transformers 5.24 warns on each call)
    ("text-generation", "gpt2-max-length", mixed_texts(4), {"max_new_tokens": 3, "do_sample": False}),
    ("text-generation", "gpt2-max-length", ["the cat sat", "hello world", "my name"], {"do_sample": False}),
])
def test_no_warnings(ours, caplog, task, model, inputs, kwargs):
    """Nothing is logged at WARNING or above and no Python warning is raised, on any logger, for every call."""
    pipe = ours(task, model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO):
            for batch_size in (1, 3):
                pipe(inputs, batch_size=batch_size, **kwargs)
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


def test_generate_itself_still_reports_both_lengths(ours, caplog):
    """The pipelines silence generate()'s length-precedence note only while they run: a direct generate() call
    that sets both lengths still gets it, once (which also shows that caplog sees these notes)."""
    pipe = ours("text-generation", "gpt2-max-length")
    with caplog.at_level(logging.INFO):
        pipe("the cat", max_new_tokens=2, max_length=30, do_sample=False)
        assert caplog.records == []
        inputs = pipe.tokenizer("the cat", return_tensors="pt")
        pipe.model.generate(**inputs, max_new_tokens=2, max_length=30, do_sample=False)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("Both max_new_tokens (=2) and max_length (=30)")


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_bad_batch_size(ours, batch_size):
    with pytest.raises(PipelineInputError, match="batch_size"):
        ours("text-classification", "bert-cls")(["a"], batch_size=batch_size)


def test_empty_list_gives_empty_list(ours):
    assert ours("text-classification", "bert-cls")([]) == []
