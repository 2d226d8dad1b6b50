"""token-classification / ner against transformers 5.24: entities, scores, indexes, word-piece regrouping, character
offsets, every aggregation strategy, ignore_labels, long texts in overlapping chunks, pre-split words; WordPiece
and byte-level BPE tokenizers; single and batched, with and without length sorting."""

from __future__ import annotations

import warnings

import pytest

from leanformers.pipelines import PipelineInputError

from .conftest import BATCHING, assert_same

TEXTS = ["My name is Sylvain and I work at Hugging Face in Brooklyn.", "Paris is the capital of France.",
         "hello world", "Where do I work? The cat sat on the mat, in Paris!"]
LONG = " ".join(TEXTS * 3)
STRATEGIES = ["none", "simple", "first", "average", "max"]

CASES = {
    **{f"bert-{s}": ("bert-ner", TEXTS, {"aggregation_strategy": s}) for s in STRATEGIES},
    **{f"roberta-{s}": ("roberta-ner", TEXTS, {"aggregation_strategy": s}) for s in STRATEGIES},
    "default": ("bert-ner", TEXTS[0], {}),
    "ignore-labels": ("bert-ner", TEXTS, {"ignore_labels": ["O", "B-PER"], "aggregation_strategy": "simple"}),
    "keep-everything": ("bert-ner", TEXTS[1], {"ignore_labels": []}),
    "stride": ("bert-ner", [LONG, TEXTS[0]], {"stride": 4, "aggregation_strategy": "first"}),
    "stride-simple": ("roberta-ner", LONG, {"stride": 3, "aggregation_strategy": "simple"}),
    "split-words": ("bert-ner", [["Paris", "is", "great"], ["hello", "world", "!"]],
                    {"is_split_into_words": True, "aggregation_strategy": "first"}),
    "split-words-one": ("bert-ner", ["My", "name", "is", "Sylvain"], {"is_split_into_words": True}),
    "split-words-delimiter": ("bert-ner", [["Paris", "is", "great"], ["hello", "world", "!"]],
                              {"is_split_into_words": True, "delimiter": "_", "aggregation_strategy": "simple",
                               "ignore_labels": []}),
}


def short_chunks(pipe, length: int):
    """The same pipeline with a tokenizer whose model_max_length forces long texts into several chunks."""
    clone = type(pipe)(model=pipe.model, tokenizer=type(pipe.tokenizer).from_pretrained(pipe.model.name_or_path,
                                                                                          model_max_length=length),
                       device="cpu")
    return clone


@pytest.mark.parametrize("batching", list(BATCHING))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case, batching, ours, theirs, tiny):
    model, inputs, kwargs = CASES[case]
    reference, pipe = theirs("token-classification", model), ours("ner", model)
    if "stride" in kwargs:
        import transformers

        reference = transformers.pipeline("ner", model=tiny(model), device="cpu",
                                          tokenizer=(tiny(model), {"model_max_length": 16}))
        pipe = short_chunks(pipe, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the BPE tokenizer's "fallback heuristic" note, in both libraries
        expected = reference(inputs, **kwargs)
        result = pipe(inputs, **kwargs, **BATCHING[batching])
    assert_same(result, expected)
    if "stride" in kwargs:
        assert pipe.tokenizer(LONG, truncation=True, return_overflowing_tokens=True, stride=kwargs["stride"]
                              )["input_ids"].__len__() > 2  # the long text really went in several chunks


def test_offsets_given_by_the_caller(ours, theirs):
    """offset_mapping= replaces the tokenizer's offsets (here shifted by one character, for a text with a leading
    space): starts, ends and words follow them."""
    reference = theirs("token-classification", "bert-ner")
    spans = reference.tokenizer(TEXTS[1], return_offsets_mapping=True)["offset_mapping"]
    offsets = [(start + 1, end + 1) if end else (start, end) for start, end in spans]
    expected = reference(" " + TEXTS[1], offset_mapping=offsets, ignore_labels=[])
    for batching in BATCHING.values():
        assert_same(ours("ner", "bert-ner")(" " + TEXTS[1], offset_mapping=offsets, ignore_labels=[], **batching),
                    expected)


@pytest.mark.parametrize("grouped, ignore_subwords, strategy", [
    (True, False, "simple"), (True, True, "first"), (False, None, "none")])
def test_grouped_entities_spelling(ours, theirs, grouped, ignore_subwords, strategy):
    """transformers 4's grouped_entities / ignore_subwords still select the matching strategy."""
    kwargs = {"grouped_entities": grouped} if ignore_subwords is None else \
        {"grouped_entities": grouped, "ignore_subwords": ignore_subwords}
    expected = theirs("token-classification", "bert-ner")(TEXTS, aggregation_strategy=strategy)
    assert_same(ours("ner", "bert-ner")(TEXTS, **kwargs), expected)


def test_word_level_strategies_group_word_pieces(ours):
    """With first/average/max a word split into pieces comes back whole, with its whole character span."""
    pipe = ours("ner", "bert-ner")
    text = "Sylvia works"
    pieces = pipe(text, ignore_labels=[])
    assert [piece["word"] for piece in pieces][:3] == ["s", "##y", "##l"]
    for strategy in ("first", "average", "max"):
        words = pipe(text, aggregation_strategy=strategy, ignore_labels=[])
        assert [(w["word"], w["start"], w["end"]) for w in words] == [("sylvia", 0, 6), ("works", 7, 12)]


@pytest.mark.parametrize("bad, kwargs, message", [
    ("", {}, "empty string"), (None, {}, "At least one input"), ([], {}, "At least one input"),
    (TEXTS[0], {"aggregation_strategy": "longest"}, "aggregation_strategy='longest'"),
    (TEXTS[0], {"stride": 2}, "stride"),
    (["a", "b"], {"is_split_into_words": False, "offset_mapping": None}, None),
])
def test_bad_input_is_a_clear_error(ours, bad, kwargs, message):
    if message is None:  # a list of short texts is fine
        assert len(ours("ner", "bert-ner")(bad)) == 2
        return
    with pytest.raises(PipelineInputError, match=message):
        ours("ner", "bert-ner")(bad, **kwargs)
