"""Text people tokenize: valid oddities get the reference's ids; what cannot be tokenized is a TokenizerError or
TypeError naming the argument; long and many texts take time and memory in proportion to their size."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import SPLADE, fixture_path, process_memory

import leanformers
from leanformers.errors import TokenizerError


@pytest.fixture(scope="module")
def pair():
    import transformers

    folder = fixture_path(*SPLADE)
    return leanformers.AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)


ODD_BUT_VALID = ["", " ", "\x00", "a\x00b", "\ufeffBOM", "e\u0301\u0301\u0301", "👩‍👩‍👧‍👦", "\u202eRTL\u202c",
                 "\t\n\r\x0b\x0c", "\U0010ffff\ufffe\uffff", "ǅ ﬁ ẞ", "\x7f\x80\x9f", "٣٤٥ ௫", "[MASK][SEP]", "#" * 300]


def test_odd_but_valid_text_matches_the_reference(pair):
    ours, theirs = pair
    for text in ODD_BUT_VALID:
        assert ours(text)["input_ids"] == theirs(text)["input_ids"], repr(text)
    assert ours(ODD_BUT_VALID)["input_ids"] == theirs(ODD_BUT_VALID)["input_ids"]
    assert ours([])["input_ids"] == []  # the reference fails on an empty batch (IndexError)
    assert ours(np.str_("numpy text"))["input_ids"] == theirs("numpy text")["input_ids"]
    assert ours([np.str_("a"), "b"])["input_ids"] == theirs(["a", "b"])["input_ids"]


@pytest.mark.parametrize("value, words", [
    (b"bytes", "`text` must be a str.*got bytes"),
    (None, "Nothing to tokenize: pass `text`"),
    (5, "`text` must be a str.*got int"),
    ({"a": 1}, "`text` must be a str.*got dict"),
    (np.array(["a", "b"]), "`text` must be a str.*got ndarray"),
    ([[["too", "deep"]]], "Text 0 of `text` is .*type list"),
    (["fine", 3], "Text 1 of `text` is 3 \\(type int\\)"),
    ([("a", "b", "c")], "Text 0 of `text` is .*type tuple"),
    ([None], "`text` must be a str"),
    ("lone \udc80 surrogate", "Text 0 holds a lone surrogate U\\+DC80 at character 5"),
])
def test_input_that_cannot_be_tokenized_names_the_argument(pair, value, words):
    ours, _ = pair
    with pytest.raises((TokenizerError, TypeError), match=words):
        ours(value)


def test_pair_argument_is_named(pair):
    ours, _ = pair
    with pytest.raises(TokenizerError, match="`text_pair` must be a str"):
        ours("a", text_pair=5)


def _measure(step):
    with open("/proc/self/clear_refs", "w") as handle:  # restart the peak at the current size
        handle.write("5")
    start_rss = process_memory()[1]
    start = time.monotonic()
    result = step()
    return result, time.monotonic() - start, process_memory()[0] - start_rss


def test_a_million_characters(pair):
    """Time and memory grow with the text: a million characters in seconds, under 1 kB of memory per character
    (the ids, masks and the engine's offsets), with the reference's ids."""
    ours, theirs = pair
    text = "Hello wörld, this is a test. " * 35_000  # about a million characters
    encoded, seconds, grown = _measure(lambda: ours(text, verbose=False))
    assert encoded["input_ids"] == theirs(text, verbose=False)["input_ids"]
    assert seconds < 60 and grown < 1000 * len(text), (seconds, grown)
    single, seconds, _ = _measure(lambda: ours("x" * 1_000_000))  # one word far over max_input_chars_per_word
    assert single["input_ids"] == [101, 100, 102] == theirs("x" * 1_000_000)["input_ids"][:3] and seconds < 60


def test_many_texts(pair):
    ours, theirs = pair
    texts = [f"text number {i}" for i in range(50_000)]
    encoded, seconds, grown = _measure(lambda: ours(texts))
    assert encoded["input_ids"][::5000] == theirs(texts[::5000])["input_ids"]
    assert seconds < 60 and grown < 5000 * len(texts), (seconds, grown)
