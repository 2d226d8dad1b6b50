"""TransfoXLTokenizer against transformers 4.34.1's (through its subprocess) over the shared corpus, with a word
vocabulary that 4.34.1 itself counts and builds from the corpus; saving in both directions; and the vocabulary
pickle that is read as plain data only."""

from __future__ import annotations

import collections
import inspect
import os
import pickle
import re

import pytest
import torch

import leanformers
from leanformers.errors import TokenizerError
from leanformers.tokenization.transfo_xl import read_vocab_pickle

from tests.parity.legacy import REF434_PYTHON, run_legacy
from .corpus import corpus, pairs

TEXTS = corpus()[:160]
PAIRS = [(a, b) for a, b in pairs()[:40]]
EXTRA = ["Hello <eos> world <formula> zzz", "<unk><eos>", "23,000 people are 1.80m tall -- or 1.9?", "HELLO <EOS>"]

_REFERENCE = """
import os, warnings
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
from transformers import TransfoXLTokenizer
builder = TransfoXLTokenizer(special=["<unk>", "<eos>"], lower_case=payload["lower_case"])
builder.count_sents([builder._tokenize(text) for text in payload["texts"][::2]])
builder.min_freq = 2
builder.build_vocab()
folder = payload["folder"]
os.makedirs(folder, exist_ok=True)
with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("\\n".join(builder.idx2sym) + "\\n")
tok = TransfoXLTokenizer(vocab_file=os.path.join(folder, "vocab.txt"), lower_case=payload["lower_case"])
tok.save_pretrained(folder)  # tokenizer_config.json beside vocab.txt (and its own vocab.pkl)
os.remove(os.path.join(folder, "vocab.pkl"))
tok.save_pretrained(folder + "-pickled")  # only 4.34.1's vocab.pkl, which pickles regexes and Moses objects

def run(tok):
    texts = payload["texts"]
    tok.pad_token = "<eos>"  # the vocabulary has no padding token
    ids = [tok(text)["input_ids"] for text in texts]
    return {"tokens": [tok.tokenize(text) for text in texts], "ids": ids,
            "decoded": [tok.decode(row) for row in ids],
            "skipped": [tok.decode(row, skip_special_tokens=True) for row in ids],
            "pairs": [tok(a, b)["input_ids"] for a, b in payload["pairs"]],
            "batch": dict(tok([a for a, _ in payload["pairs"][:6]], padding=True, truncation=True, max_length=9,
                              return_attention_mask=True, return_special_tokens_mask=True)),
            "size": [len(tok), tok.vocab_size]}

result = {"built": run(tok)}
result["ours"] = run(TransfoXLTokenizer.from_pretrained(payload["ours"]))
"""


@pytest.fixture(scope="module", params=[False, True], ids=["cased", "lower_case"])
def both(request, tmp_path_factory):
    """(ours loaded from the reference's folder, the reference's results on it and on the folder we saved)."""
    root = tmp_path_factory.mktemp("transfo_xl_tok")
    folder, saved = root / "reference", root / "ours"
    texts = TEXTS + EXTRA
    payload = {"texts": texts, "pairs": PAIRS, "lower_case": request.param, "folder": str(folder),
               "ours": str(saved)}
    # our folder is written from the reference's after it exists: build the reference's first
    run_legacy("result = None\n" + _REFERENCE.split("def run")[0], payload, python=REF434_PYTHON)
    ours = leanformers.AutoTokenizer.from_pretrained(folder)
    ours.save_pretrained(saved)
    assert sorted(os.listdir(saved)) == ["added_tokens.json", "tokenizer_config.json", "vocab.txt"]
    return ours, run_legacy(_REFERENCE, payload, python=REF434_PYTHON), texts


def test_corpus_tokens_ids_and_decoding(both):
    ours, reference, texts = both
    assert type(ours).__name__ == "TransfoXLTokenizer"
    expected = reference["built"]
    assert [ours.tokenize(text) for text in texts] == expected["tokens"]
    ids = [ours(text)["input_ids"] for text in texts]
    assert ids == expected["ids"]
    assert [ours.decode(row) for row in ids] == expected["decoded"]
    assert [ours.decode(row, skip_special_tokens=True) for row in ids] == expected["skipped"]
    assert [len(ours), ours.vocab_size] == expected["size"]


def test_pairs_batches_and_special_tokens(both):
    ours, reference, _ = both
    expected = reference["built"]
    assert [ours(a, b)["input_ids"] for a, b in PAIRS] == expected["pairs"]
    ours.pad_token = "<eos>"
    batch = ours([a for a, _ in PAIRS[:6]], padding=True, truncation=True, max_length=9, return_attention_mask=True,
                 return_special_tokens_mask=True)
    assert dict(batch) == expected["batch"]


def test_saved_by_us_loads_in_reference(both):
    _, reference, _ = both
    assert reference["ours"] == reference["built"]


def test_folder_saved_by_reference(both, tmp_path):
    ours, _, texts = both
    pickled = os.path.join(str(ours.name_or_path) + "-pickled")
    with pytest.raises(TokenizerError, match=r"global re\._compile.*vocab\.txt"):
        leanformers.AutoTokenizer.from_pretrained(pickled)
    ours.save_vocabulary(pickled)  # a vocab.txt beside the refused pickle is read instead of it
    again = leanformers.AutoTokenizer.from_pretrained(pickled)
    assert [again(text)["input_ids"] for text in texts[:40]] == [ours(text)["input_ids"] for text in texts[:40]]


def test_vocab_pickle_and_json(tmp_path):
    symbols = ["<unk>", "<eos>", "the", ",", "cat"]
    data = {"idx2sym": symbols, "sym2idx": collections.OrderedDict((s, i) for i, s in enumerate(symbols)),
            "counter": collections.Counter({"the": 3, "cat": 1}), "unk_idx": 0, "min_freq": 0, "cutoffs": (1, 2.5)}
    (tmp_path / "vocab.pkl").write_bytes(pickle.dumps(data))
    from_pickle = leanformers.TransfoXLTokenizer(pretrained_vocab_file=str(tmp_path / "vocab.pkl"))
    assert from_pickle("the cat, dog")["input_ids"] == [2, 4, 3, 0]
    (tmp_path / "vocab.json").write_text('{"<unk>": 0, "<eos>": 1, "the": 2, ",": 3, "cat": 4}')
    from_json = leanformers.TransfoXLTokenizer(vocab_file=str(tmp_path / "vocab.json"))
    assert from_json("the cat, dog")["input_ids"] == [2, 4, 3, 0]
    assert read_vocab_pickle(tmp_path / "vocab.pkl")["counter"] == data["counter"]
    for zipped in (False, True):  # vocab.bin: torch.save's old layout (successive pickles) and its zip layout
        torch.save(data, tmp_path / "vocab.bin", _use_new_zipfile_serialization=zipped)
        assert read_vocab_pickle(tmp_path / "vocab.bin") == data


class _Hostile:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_hostile_vocab_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "vocab.pkl"
    path.write_bytes(pickle.dumps({"idx2sym": ["<unk>"], "sym2idx": {"<unk>": 0},
                                   "payload": _Hostile(f"touch {marker}")}))
    with pytest.raises(TokenizerError, match=rf"{re.escape(str(path))}.*global (posix|os)\.system"):
        leanformers.TransfoXLTokenizer(pretrained_vocab_file=str(path))
    with pytest.raises(TokenizerError, match=r"global builtins\.eval"):
        path.write_bytes(pickle.dumps({"x": _Eval()}))
        read_vocab_pickle(path)
    assert not marker.exists()


class _Eval:
    def __reduce__(self):
        return eval, ("1",)


# ---- building a vocabulary (count_file / count_sents / build_vocab) ----
BUILDS = {
    "cased_min_freq": dict(special=["<unk>", "<eos>"], min_freq=2),
    "lower_max_size": dict(special=["<eos>", "<unk>", "<pad>"], lower_case=True, max_size=60),
    "no_unk": dict(special=["<eos>"], max_size=25, min_freq=3),
}
SENTENCES = [["the", "cat", "sat"], ["The", "<pad>", "zebra", "zebra"], []]

_BUILD_REFERENCE = """
import warnings
warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
from transformers import TransfoXLTokenizer

result = {}
for name, options in payload["builds"].items():
    tok = TransfoXLTokenizer(**options)
    lines = tok.count_file(payload["file"], add_eos=True)
    tok.count_sents(payload["sentences"])
    tok.build_vocab()
    out = {"lines": lines, "counts": tok.counter.most_common(), **_state(tok, payload["probe"])}
    if "<unk>" in tok.sym2idx:
        out["ids"] = [tok(text)["input_ids"] for text in payload["texts"]]
        out["encoded_file"] = tok.encode_file(payload["file"], ordered=True)
        out["encoded_sents"] = tok.encode_sents(payload["sentences"])
    result[name] = out
tok = TransfoXLTokenizer(vocab_file=payload["vocab_file"], min_freq=5)
tok.count_file(payload["file"])
tok.build_vocab()  # from the vocabulary file again, whatever was counted
result["from_file"] = _state(tok, payload["probe"])
result["from_file"]["ids"] = [tok(text)["input_ids"] for text in payload["texts"]]
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfo_xl_build")
    (root / "corpus.txt").write_text("\n".join(TEXTS[:120] + EXTRA), encoding="utf-8")
    (root / "vocab.txt").write_text("<eos>\nthe\n<unk>\n,\ncat\nthe\n.\n", encoding="utf-8")
    payload = {"builds": BUILDS, "file": str(root / "corpus.txt"), "sentences": SENTENCES, "texts": TEXTS[:60] + EXTRA,
               "vocab_file": str(root / "vocab.txt"), "probe": ["the", "<unk>", "<eos>", "<formula>", "<pad>", "."]}
    # the reference side reads its tokenizers with the same `_state` as this side
    return payload, run_legacy(inspect.getsource(_state) + _BUILD_REFERENCE, payload, python=REF434_PYTHON)


def _state(tok, probe):
    known = [t for t in probe if t in tok.sym2idx or t in tok.added_tokens_encoder]
    return {"idx2sym": list(tok.idx2sym), "sym2idx": dict(tok.sym2idx), "size": [len(tok), tok.vocab_size],
            "added": dict(tok.added_tokens_encoder), "vocab": dict(tok.get_vocab()),
            "specials": {name: getattr(tok, name, None) for name in ("unk_idx", "eos_idx", "pad_idx")},
            "known_ids": tok.convert_tokens_to_ids(known), "decoded": tok.decode(list(range(len(tok.idx2sym))))}


@pytest.mark.parametrize("name", list(BUILDS))
def test_vocabulary_built_from_counts_matches_reference(built, name):
    payload, reference = built
    expected = reference[name]
    tok = leanformers.TransfoXLTokenizer(**BUILDS[name])
    lines = tok.count_file(payload["file"], add_eos=True)
    tok.count_sents(SENTENCES)
    tok.build_vocab()
    assert lines == expected["lines"] and len(expected["idx2sym"]) > 10
    assert tok.counter.most_common() == [tuple(item) for item in expected["counts"]]
    assert _state(tok, payload["probe"]) == {key: expected[key] for key in _state(tok, payload["probe"])}
    if "ids" in expected:
        assert [tok(text)["input_ids"] for text in payload["texts"]] == expected["ids"]
        assert torch.equal(tok.encode_file(payload["file"], ordered=True), expected["encoded_file"])
        assert all(map(torch.equal, tok.encode_sents(SENTENCES), expected["encoded_sents"]))
    else:  # no <unk>: an unknown word is an error in both libraries
        with pytest.raises(TokenizerError, match="no <unk>"):
            tok("an unheard-of word")


def test_vocabulary_rebuilt_from_its_file_matches_reference(built):
    payload, reference = built
    tok = leanformers.TransfoXLTokenizer(vocab_file=payload["vocab_file"], min_freq=5)
    tok.count_file(payload["file"])
    tok.build_vocab()
    expected = reference["from_file"]
    assert _state(tok, payload["probe"]) == {key: expected[key] for key in _state(tok, payload["probe"])}
    assert [tok(text)["input_ids"] for text in payload["texts"]] == expected["ids"]


def test_an_empty_vocabulary_says_how_to_build_one(tmp_path):
    tok = leanformers.TransfoXLTokenizer()
    assert (len(tok.idx2sym), tok.vocab_size) == (0, 0)
    with pytest.raises(TokenizerError, match="vocabulary is empty.*build_vocab"):
        tok("some words")
    with pytest.raises(leanformers.errors.ResourceNotFoundError, match="missing.txt"):
        tok.count_file(tmp_path / "missing.txt")
    (tmp_path / "vocab.txt").write_text("the\ncat\n")
    without_unk = leanformers.TransfoXLTokenizer(vocab_file=str(tmp_path / "vocab.txt"))
    with pytest.raises(TokenizerError, match="no <unk>"):
        without_unk.build_vocab()
