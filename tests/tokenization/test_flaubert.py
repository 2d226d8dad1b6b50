"""FlaubertTokenizer against transformers 4.55.4's (its legacy reference), cased and lower-cased, over the shared
corpus: ids of single texts and pairs, tokens, decoding, and folders saved by either library loaded by the other.
The reference runs once per test in a subprocess (tests/parity/legacy.py)."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

import leanformers
from tests.parity.legacy import run_legacy

from .corpus import corpus, pairs

TEXTS = corpus()
PAIRS = pairs()[:120]
SPECIALS = ["<s>", "</s>", "<pad>", "<unk>"] + [f"<special{index}>" for index in range(10)]
EXTRA = ["Ça va? « Très bien », dit-il… l'homme d'affaires ``cité''.", "L'ÉTÉ À PARIS: crème brûlée, Noël, œuvre."]

_SCRIPT = """
result = []
for job in payload["jobs"]:
    tok = transformers.AutoTokenizer.from_pretrained(job["folder"], **job["kwargs"])
    vocab = tok.get_vocab()
    single = tok(job["texts"])["input_ids"]
    first, second = zip(*job["pairs"])
    paired = tok(list(first), list(second), return_token_type_ids=True)
    out = {"class": type(tok).__name__, "single": single, "pairs": paired["input_ids"],
           "types": paired["token_type_ids"], "decoded": [tok.decode(ids) for ids in single[:120]],
           "skipped": tok.batch_decode(paired["input_ids"], skip_special_tokens=True),
           "tokens": [[t if t in vocab else tok.unk_token for t in tok.tokenize(text)] for text in job["texts"][:150]],
           "do_lower_case": tok.do_lower_case, "do_lowercase": tok.do_lowercase,
           "keys": sorted(tok(job["texts"][:3]).keys()), "input_names": tok.model_input_names}
    if job.get("save"):
        tok.save_pretrained(job["save"])
    result.append(out)
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """vocab.json + merges.txt of a small cased BPE with `</w>` word ends, trained on corpus text."""
    engine = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    engine.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=SPECIALS, end_of_word_suffix="</w>",
                                  limit_alphabet=160, show_progress=False)
    engine.train_from_iterator(TEXTS[:300] + EXTRA, trainer)
    model = json.loads(engine.to_str())["model"]
    root = tmp_path_factory.mktemp("flaubert-tokenizer")
    (root / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False), encoding="utf-8")
    (root / "merges.txt").write_text("".join(f"{a} {b}\n" for a, b in model["merges"]), encoding="utf-8")
    (root / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "FlaubertTokenizer"}),
                                                encoding="utf-8")
    return root


def _check(ours, theirs: dict, texts: list[str], pair_list: list):
    assert type(ours) is leanformers.FlaubertTokenizer and theirs["class"] == "FlaubertTokenizer"
    single = ours(texts)["input_ids"]
    assert single == theirs["single"]
    paired = ours([a for a, _ in pair_list], [b for _, b in pair_list], return_token_type_ids=True)
    assert paired["input_ids"] == theirs["pairs"] and paired["token_type_ids"] == theirs["types"]
    assert [ours.decode(ids) for ids in single[:120]] == theirs["decoded"]
    assert ours.batch_decode(paired["input_ids"], skip_special_tokens=True) == theirs["skipped"]
    assert [ours.tokenize(text) for text in texts[:150]] == theirs["tokens"]
    assert ours.do_lower_case is theirs["do_lower_case"] is False
    assert sorted(ours(texts[:3]).keys()) == theirs["keys"] and ours.model_input_names == theirs["input_names"]


def test_corpus_cased_and_lowercased_and_saved(folder, tmp_path):
    texts = EXTRA + TEXTS
    jobs = [{"folder": str(folder), "kwargs": {}, "texts": texts, "pairs": PAIRS, "save": str(tmp_path / "ref")},
            {"folder": str(folder), "kwargs": {"do_lowercase": True}, "texts": texts, "pairs": PAIRS}]
    ours_saved = tmp_path / "ours"
    leanformers.AutoTokenizer.from_pretrained(folder, do_lowercase=True).save_pretrained(ours_saved)
    jobs.append({"folder": str(ours_saved), "kwargs": {}, "texts": texts[:200], "pairs": PAIRS[:20]})
    cased, lowered, reloaded = run_legacy(_SCRIPT, {"jobs": jobs})
    assert reloaded["single"] == lowered["single"][:200] and reloaded["pairs"] == lowered["pairs"][:20]
    assert cased["single"] != lowered["single"] and lowered["do_lowercase"] is True
    _check(leanformers.AutoTokenizer.from_pretrained(folder), cased, texts, PAIRS)
    ours = leanformers.AutoTokenizer.from_pretrained(folder, do_lowercase=True)
    assert ours.do_lowercase is True
    _check(ours, lowered, texts, PAIRS)
    assert reloaded["do_lowercase"] is True  # the reference reads our saved option
    _check(leanformers.AutoTokenizer.from_pretrained(ours_saved), lowered, texts, PAIRS)
    _check(leanformers.AutoTokenizer.from_pretrained(tmp_path / "ref"), cased, texts, PAIRS)


def test_text_steps(folder):
    ours = leanformers.FlaubertTokenizer(folder / "vocab.json", merges_file=str(folder / "merges.txt"))
    assert ours.do_lowercase is False and ours.do_lowercase_and_remove_accent is False
    assert ours._tokenize("a  b c", bypass_tokenizer=True) == [ours.bpe(word) for word in "a b c".split()]
    assert ours.tokenize("``Noël''") == ours.tokenize('"Noël"')
    ignored = leanformers.FlaubertTokenizer(folder / "vocab.json", merges_file=str(folder / "merges.txt"),
                                            do_lowercase_and_remove_accent=True)
    assert ignored(EXTRA)["input_ids"] == ours(EXTRA)["input_ids"]


def test_auto_tokenizer_from_the_model_type(folder, tmp_path):
    import shutil

    for model_type, cls in (("flaubert", leanformers.FlaubertTokenizer), ("xlm", leanformers.XLMTokenizer)):
        target = tmp_path / model_type
        target.mkdir()
        for name in ("vocab.json", "merges.txt"):
            shutil.copy(folder / name, target / name)
        (target / "config.json").write_text(json.dumps({"model_type": model_type}), encoding="utf-8")
        assert type(leanformers.AutoTokenizer.from_pretrained(target)) is cls
