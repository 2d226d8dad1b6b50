"""DeBERTa's tokenizers against the reference on the tokenizer corpus: DebertaV2Tokenizer (Unigram and BPE
SentencePiece models, with its options) everywhere against transformers 5; DebertaTokenizer (GPT-2's byte-level BPE)
against transformers 5 on single texts without a mask token, and against transformers 4.55.4 (the original layout
`[CLS] A [SEP] B [SEP]` with token types, and a mask token that takes the space before it) on pairs and masks.
Folders load both ways: saved by the reference and read here, saved here and read by the reference."""

from __future__ import annotations

import json
import shutil

import pytest
import transformers

import leanformers
import leanformers.tokenization as lt
from conftest import fixture_path
from tests.parity.legacy import run_legacy

from .conftest import GPT2_FILES, assert_same_output
from .corpus import corpus, pairs, short_corpus

TEXTS = corpus()
PAIRS = [(a, b) for a, b in pairs() if len(a) + len(b) <= 600]
SPM = {"unigram": "botchan_en_unigram_1000.model", "bpe": "botchan_en_bpe_1000.model"}
CALL = {"return_offsets_mapping": True, "return_special_tokens_mask": True, "return_token_type_ids": True}


def _folder(root, name: str, files: dict, config: dict):
    folder = root / name
    folder.mkdir()
    for target, source in files.items():
        shutil.copy(source, folder / target)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """kind -> (folder of the legacy files, folder the reference saved from them)."""
    root = tmp_path_factory.mktemp("deberta-tokenizers")
    out = {"v1": _folder(root, "v1", {"vocab.json": fixture_path(*GPT2_FILES, "gpt2_vocab.json"),
                                      "merges.txt": fixture_path(*GPT2_FILES, "gpt2_merges.txt")},
                         {"tokenizer_class": "DebertaTokenizer"})}
    for kind, model in SPM.items():
        out[kind] = _folder(root, kind, {"spm.model": fixture_path("sentencepiece", "test", model)},
                            {"tokenizer_class": "DebertaV2Tokenizer"})
    saved = {}
    for kind, folder in out.items():
        saved[kind] = root / f"{kind}-saved"
        transformers.AutoTokenizer.from_pretrained(str(folder)).save_pretrained(str(saved[kind]))
    return {kind: (out[kind], saved[kind]) for kind in out}


def _compare(ours, ref, texts, pair_texts=()):
    assert_same_output(ours(texts, **CALL), ref(texts, **CALL))
    if pair_texts:
        firsts, seconds = zip(*pair_texts)
        assert_same_output(ours(list(firsts), list(seconds), **CALL), ref(list(firsts), list(seconds), **CALL))
    ids = ref(texts)["input_ids"]
    for row in ids:
        assert ours.convert_ids_to_tokens(row) == ref.convert_ids_to_tokens(row)
    for skip in (False, True):
        assert ours.batch_decode(ids, skip_special_tokens=skip) == ref.batch_decode(ids, skip_special_tokens=skip)


@pytest.mark.parametrize("saved", [False, True], ids=["spm-model", "tokenizer-json"])
@pytest.mark.parametrize("kind", sorted(SPM))
def test_v2_corpus(folders, kind, saved):
    folder = str(folders[kind][saved])
    ours, ref = leanformers.AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    assert type(ours) is lt.DebertaV2TokenizerFast
    assert ours.all_special_tokens == ref.all_special_tokens and ours.get_vocab() == ref.get_vocab()
    _compare(ours, ref, TEXTS, PAIRS)


@pytest.mark.parametrize("options", [{"do_lower_case": True, "split_by_punct": True}, {"add_prefix_space": False}])
def test_v2_options(folders, options):
    folder = str(folders["unigram"][0])
    ours = lt.DebertaV2Tokenizer.from_pretrained(folder, **options)
    ref = transformers.DebertaV2Tokenizer.from_pretrained(folder, **options)
    _compare(ours, ref, short_corpus()[:150], PAIRS[:30])


@pytest.mark.parametrize("saved", [False, True], ids=["vocab-merges", "tokenizer-json"])
def test_v1_single_texts(folders, saved):
    folder = str(folders["v1"][saved])
    ours, ref = leanformers.AutoTokenizer.from_pretrained(folder), transformers.AutoTokenizer.from_pretrained(folder)
    assert type(ours) is lt.DebertaTokenizerFast
    assert ours.all_special_tokens == ref.all_special_tokens and len(ours) == len(ref)
    _compare(ours, ref, [text for text in TEXTS if "[MASK]" not in text])


_LEGACY_V1 = """
tok = transformers.DebertaTokenizerFast.from_pretrained(payload["folder"])
result = {"singles": [tok(text, return_token_type_ids=True) for text in payload["texts"]],
          "pairs": [tok(a, b, return_token_type_ids=True) for a, b in payload["pairs"]]}
result = {key: [{"input_ids": e["input_ids"], "token_type_ids": e["token_type_ids"],
                 "decoded": tok.decode(e["input_ids"])} for e in rows] for key, rows in result.items()}
"""


def test_v1_pairs_and_mask_match_the_original(folders):
    texts = [text for text in TEXTS if "[MASK]" in text] + ["fill [MASK]", "[MASK] first", "a  [MASK] b"]
    expected = run_legacy(_LEGACY_V1, {"folder": str(folders["v1"][0]), "texts": texts, "pairs": PAIRS[:60]})
    for saved in (False, True):
        ours = lt.DebertaTokenizer.from_pretrained(folders["v1"][saved])
        got = {"singles": [ours(text) for text in texts], "pairs": [ours(a, b) for a, b in PAIRS[:60]]}
        for key, rows in expected.items():
            for row, encoding in zip(rows, got[key]):
                assert encoding["input_ids"] == row["input_ids"]
                assert encoding["token_type_ids"] == row["token_type_ids"]
                assert ours.decode(encoding["input_ids"]) == row["decoded"]


@pytest.mark.parametrize("kind", ["v1", "unigram", "bpe"])
def test_saved_here_loads_in_reference(folders, tmp_path, kind):
    ours = leanformers.AutoTokenizer.from_pretrained(str(folders[kind][0]))
    ours.save_pretrained(tmp_path)
    ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    back = leanformers.AutoTokenizer.from_pretrained(str(tmp_path))
    texts = [text for text in short_corpus()[:120] if "[MASK]" not in text]
    _compare(ours, ref, texts)
    assert_same_output(back(texts, texts[::-1], **CALL), ours(texts, texts[::-1], **CALL))


def test_special_tokens_and_inputs(folders):
    for kind, cls in (("v1", lt.DebertaTokenizer), ("unigram", lt.DebertaV2Tokenizer)):
        ours = cls.from_pretrained(folders[kind][0])
        assert (ours.cls_token, ours.sep_token, ours.mask_token, ours.pad_token) == ("[CLS]", "[SEP]", "[MASK]",
                                                                                      "[PAD]")
        assert ours.model_input_names == ["input_ids", "attention_mask", "token_type_ids"]
        encoded = ours("a b", "c")
        assert encoded["input_ids"][0] == ours.cls_token_id and encoded["input_ids"][-1] == ours.sep_token_id
        assert ours.get_special_tokens_mask(encoded["input_ids"], already_has_special_tokens=True)[0] == 1
