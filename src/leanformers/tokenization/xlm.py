"""XLM tokenizer: Moses pre-tokenisation (the `sacremoses` package) and BPE with `</w>` word ends.

The Rust engine runs the usual steps (special tokens matched in the raw text, pairs, truncation, padding, batches);
its normalizer is a Python step that applies XLM's text pipeline to each stretch of text between special tokens:
unicode punctuation replaced, Moses punctuation normalisation, non-printing characters removed, Moses
tokenisation, then lower-casing and accent stripping. The words come back separated by single spaces, which the
engine's pre-tokenizer splits on.

BPE runs in the engine (`models.BPE` with the `</w>` suffix) when the vocabulary holds every part and result of the
merges. The files of the released XLM checkpoints come from fastBPE, whose merges produce intermediate pieces that
vocab.json does not list; the engine's BPE refuses such files. For them the Python step also applies the merges and
the engine only looks the pieces up (`models.WordLevel`), so a piece outside the vocabulary is `<unk>`, as in
transformers.
"""

from __future__ import annotations

import json
import os
import unicodedata
from itertools import pairwise

from tokenizers import AddedToken, Encoding, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE, WordLevel

from ..errors import ResourceNotFoundError, TokenizerError
from .base import PreTrainedTokenizerFast
from .templates import template

VOCAB_FILES_NAMES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
WORD_END = "</w>"
INSTALL_HINT = 'pip install "leanformers[xlm]"'
# languages that XLM segments with a dedicated word segmenter instead of Moses
_SEGMENTED_LANGUAGES = {"zh": "rjieba", "ja": "KyTea", "th": "PyThaiNLP"}
# Sennrich's WMT16 Romanian clean-up: cedilla forms to comma forms, then all Romanian diacritics dropped
_ROMANIAN = str.maketrans({"\u015e": "S", "\u0218": "S", "\u015f": "s", "\u0219": "s", "\u0162": "T", "\u021a": "T",
                           "\u0163": "t", "\u021b": "t", "\u0102": "A", "\u0103": "a", "\u00c2": "A", "\u00e2": "a",
                           "\u00ce": "I", "\u00ee": "i"})
_CACHE_LIMIT = 1 << 17  # words whose BPE pieces are remembered


def _sacremoses():
    try:
        import sacremoses
    except ImportError:
        raise TokenizerError("XLMTokenizer needs the sacremoses package for its Moses pre-tokenisation: install it "
                             f"with `{INSTALL_HINT}`.") from None
    return sacremoses


def strip_non_printing(text: str) -> str:
    """Drop the characters of the Unicode "other" categories (controls, format characters, unassigned)."""
    return "".join(char for char in text if not unicodedata.category(char).startswith("C"))


def lowercase_and_strip_accents(words: list[str]) -> list[str]:
    """XLM's lower-casing: lower case, canonical decomposition, combining marks dropped (words stay aligned)."""
    text = unicodedata.normalize("NFD", " ".join(words).lower())
    return "".join(char for char in text if unicodedata.category(char) != "Mn").lower().split(" ")


def bpe_pieces(word: str, ranks: dict) -> list[str]:
    """BPE of one word: its characters (the last one marked `</w>`), then the adjacent pair of lowest rank merged
    everywhere, left to right, until no adjacent pair has a rank."""
    symbols = [*word[:-1], word[-1] + WORD_END]
    while len(symbols) > 1:
        pair = min(pairwise(symbols), key=lambda item: ranks.get(item, float("inf")))
        if pair not in ranks:
            break
        merged, index = [], 0
        while index < len(symbols):
            if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == pair:
                merged.append(symbols[index] + symbols[index + 1])
                index += 2
            else:
                merged.append(symbols[index])
                index += 1
        symbols = merged
    return symbols


class _Moses:
    """Moses steps per language (sacremoses normalizers and tokenizers, built once per language)."""

    def __init__(self):
        self._sacremoses = _sacremoses()
        self._normalizers: dict = {}
        self._tokenizers: dict = {}

    def normalizer(self, lang: str):
        if lang not in self._normalizers:
            self._normalizers[lang] = self._sacremoses.MosesPunctNormalizer(lang=lang)
        return self._normalizers[lang]

    def pipeline(self, text: str, lang: str) -> str:
        """Unicode punctuation replaced, punctuation normalised, non-printing characters removed."""
        normalizer = self.normalizer(lang)
        return strip_non_printing(normalizer.normalize(normalizer.replace_unicode_punct(text)))

    def tokenize(self, text: str, lang: str) -> list[str]:
        if lang not in self._tokenizers:
            self._tokenizers[lang] = self._sacremoses.MosesTokenizer(lang=lang)
        return self._tokenizers[lang].tokenize(text, return_str=False, escape=False)

    def words(self, text: str, lang: str) -> list[str]:
        """The Moses words of a text in a language that Moses segments."""
        text = self.pipeline(text, lang)
        if lang == "ro":
            text = text.translate(_ROMANIAN)
        return self.tokenize(text, lang)


class _TextStep:
    """The engine's normalizer: the words of a stretch of text (their BPE pieces when `ranks` is set), joined by
    single spaces. transformers' XLMTokenizer always segments as English, whatever `lang` a call passes."""

    def __init__(self, lowercase: bool, ranks: dict | None):
        self.moses = _Moses()
        self.lowercase = lowercase
        self.ranks = ranks
        self.cache: dict[str, list[str]] = {}

    def words(self, text: str, lang: str = "en") -> list[str]:
        words = self.moses.words(text, lang)
        return lowercase_and_strip_accents(words) if self.lowercase else words

    def pieces(self, word: str) -> list[str]:
        pieces = self.cache.get(word)
        if pieces is None:
            if len(self.cache) >= _CACHE_LIMIT:
                self.cache.clear()
            pieces = self.cache[word] = bpe_pieces(word, self.ranks)
        return pieces

    def normalize(self, normalized):
        text = normalized.normalized
        if not text:
            return
        words = [word for word in self.words(text) if word]
        if self.ranks is not None:
            words = [piece for word in words for piece in self.pieces(word)]
        normalized.clear()
        normalized.append(" ".join(words))

    def __getstate__(self):
        return {"lowercase": self.lowercase, "ranks": self.ranks}

    def __setstate__(self, state):
        self.__init__(state["lowercase"], state["ranks"])


class _JoinPieces:
    """The engine's decoder: pieces concatenated, each `</w>` a space, outer spaces stripped (as transformers)."""

    def decode_chain(self, tokens: list[str]) -> list[str]:
        return ["".join(tokens).replace(WORD_END, " ").strip()]


def _read_files(kwargs: dict) -> tuple[dict, list]:
    """(vocabulary, merge entries) from `vocab=` / `merges=` or from vocab.json + merges.txt."""
    vocab, merges = kwargs.get("vocab"), kwargs.get("merges")
    if isinstance(vocab, dict):
        return dict(vocab), list(merges or [])
    vocab_file = kwargs.get("vocab_file") or (vocab if isinstance(vocab, (str, os.PathLike)) else None)
    merges_file = kwargs.get("merges_file") or (merges if isinstance(merges, (str, os.PathLike)) else None)
    if not vocab_file or not merges_file:
        raise TokenizerError("XLMTokenizer needs a vocabulary and merges: pass vocab_file= and merges_file= "
                             "(vocab.json and merges.txt), or load a folder that has both.")
    for path, what in ((vocab_file, "vocab.json"), (merges_file, "merges.txt")):
        if not os.path.isfile(path):
            raise ResourceNotFoundError(f"No XLM {what} at {os.fspath(path)!r}: pass the path of an existing file.")
    with open(vocab_file, encoding="utf-8") as handle:
        vocab = json.load(handle)
    with open(merges_file, encoding="utf-8") as handle:
        # every line but the text after the last newline, as transformers reads it; fastBPE adds a count column
        merges = handle.read().split("\n")[:-1]
    return vocab, merges


def _merge_ranks(merges: list) -> dict[tuple[str, str], int]:
    ranks = {}
    for rank, merge in enumerate(merges):
        pair = tuple(merge.split()[:2]) if isinstance(merge, str) else tuple(merge)[:2]
        if len(pair) == 2:
            ranks[pair] = rank  # a pair listed twice keeps its last rank, as in transformers
    return ranks


def _engine_can_merge(vocab: dict, ranks: dict, unk: str) -> bool:
    """Whether the engine's BPE gives transformers' ids: every merge part and result in the vocabulary (the engine
    merges ids, not strings), one token per id, and the unknown token in no merge."""
    if len(set(vocab.values())) != len(vocab):
        return False
    return all(a in vocab and b in vocab and a + b in vocab and unk not in (a, b) for a, b in ranks)


def _is_pair(item, is_pretokenized: bool) -> bool:
    """Whether one input of a batch is a pair, as the engine reads it."""
    kind = (list, tuple) if is_pretokenized else str
    return isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(side, kind) for side in item)


def _truncate(first, second, budget: int, truncation: dict):
    """Cut encodings (without special tokens) to `budget` tokens in all, as transformers' Python tokenizers do:
    longest_first takes from the longer sequence down to the length of the other, then from both, the second
    losing the odd token."""
    if budget < 0:
        raise TokenizerError(f"max_length={truncation['max_length']} leaves no room for the special tokens: "
                             f"use a larger max_length.")
    n1, n2 = len(first), len(second) if second is not None else 0
    remove = n1 + n2 - budget
    if remove <= 0:
        return
    strategy = truncation["strategy"]
    if second is None or strategy == "only_first":
        keep = (n1 - remove, n2)
    elif strategy == "only_second":
        keep = (n1, n2 - remove)
    else:
        uneven = min(abs(n1 - n2), remove)
        even = remove - uneven
        keep = ((n1 - uneven - even // 2, n2 - (even - even // 2)) if n1 > n2
                else (n1 - even // 2, n2 - uneven - (even - even // 2)))
    if min(keep) < 0:
        raise TokenizerError(f"Cannot truncate to max_length={truncation['max_length']} with '{strategy}': the "
                             f"sequence it cuts is too short. Use truncation='longest_first' or a larger max_length.")
    options = {"stride": truncation["stride"], "direction": truncation["direction"]}
    first.truncate(keep[0], **options)
    if second is not None:
        second.truncate(keep[1], **options)


def _pad(rows: list, padding: dict):
    """Pad assembled encodings as the engine pads a batch (to `length`, else the longest, then to a multiple)."""
    length = padding["length"] or max((len(row) for row in rows), default=0)
    multiple = padding["pad_to_multiple_of"]
    if multiple:
        length = -(-length // multiple) * multiple
    for row in rows:
        row.pad(length, direction=padding["direction"], pad_id=padding["pad_id"],
                pad_type_id=padding["pad_type_id"], pad_token=padding["pad_token"])


class XLMTokenizer(PreTrainedTokenizerFast):
    """XLM (Moses pre-tokenisation, lower-cased and accent-free by default, BPE with `</w>` word ends):
    `<s> A </s>` and `<s> A </s> B </s>`, token type 1 for the second sequence."""

    vocab_files_names = VOCAB_FILES_NAMES
    defaults = {"unk_token": "<unk>", "bos_token": "<s>", "sep_token": "</s>", "pad_token": "<pad>",
                "cls_token": "</s>", "mask_token": "<special1>",
                "additional_special_tokens": [f"<special{index}>" for index in range(10)], "lang2id": None,
                "id2lang": None, "do_lowercase_and_remove_accent": True}
    options = ("do_lowercase_and_remove_accent", "lang2id", "id2lang")

    @classmethod
    def saved_class_name(cls) -> str:
        return "XLMTokenizer"

    # ---- construction ----
    def _make_backend(self, tokenizer_object, tokenizer_file, kwargs) -> Tokenizer:
        if tokenizer_object is not None or tokenizer_file is not None:
            raise TokenizerError("XLMTokenizer is built from vocab.json and merges.txt (its Moses step cannot be "
                                 "stored in a tokenizer.json): pass vocab_file= and merges_file=.")
        lang2id, id2lang = kwargs.get("lang2id"), kwargs.get("id2lang")
        if lang2id is not None and id2lang is not None and len(lang2id) != len(id2lang):
            raise TokenizerError(f"lang2id has {len(lang2id)} languages but id2lang has {len(id2lang)}: pass two "
                                 f"mappings of the same languages.")
        vocab, merges = _read_files(kwargs)
        ranks = _merge_ranks(merges)
        unk = str(kwargs.get("unk_token"))
        object.__setattr__(self, "_vocab", vocab)
        object.__setattr__(self, "_ranks", ranks)
        in_engine = _engine_can_merge(vocab, ranks, unk)
        unk_token = unk if unk in vocab else None
        if in_engine:
            model = BPE(vocab, sorted(ranks, key=ranks.get), unk_token=unk_token, continuing_subword_prefix="",
                        end_of_word_suffix=WORD_END, fuse_unk=False, dropout=None)
        else:
            model = WordLevel(vocab, unk_token=unk_token)
        step = _TextStep(bool(kwargs.get("do_lowercase_and_remove_accent", True)), None if in_engine else ranks)
        object.__setattr__(self, "_step", step)
        backend = Tokenizer(model)
        self._attach_steps(backend)
        return backend

    def _attach_steps(self, backend: Tokenizer):
        backend.normalizer = normalizers.Normalizer.custom(self._step)
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        backend.decoder = decoders.Decoder.custom(_JoinPieces())

    def _family_template(self):
        bos, sep = str(self.bos_token), str(self.sep_token)
        return template(f"{bos}:0 $A:0 {sep}:0", f"{bos}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                        [(bos, self.bos_token_id), (sep, self.sep_token_id)])

    def _register_added_tokens(self, added_tokens_decoder: dict, from_files: bool):
        # transformers matches every added token in the raw text, before Moses: none is matched after it
        raw = {index: self._raw_text_token(token, getattr(token, "special", False))
               for index, token in added_tokens_decoder.items()}
        super()._register_added_tokens(raw, from_files)

    def _raw_text_token(self, token, special: bool) -> AddedToken:
        """An added token matched in the raw text; a normalized plain token is lower-cased first when the
        tokenizer lower-cases, as transformers does when it is added."""
        if isinstance(token, str):
            special = special or token in self.all_special_tokens
            token = AddedToken(token, normalized=not special, special=special)
        state = token.__getstate__()
        if state["normalized"] and not (special or state["special"]) and self.do_lowercase_and_remove_accent:
            state["content"] = state["content"].lower()
        state.update(normalized=False, special=special or state["special"])
        return AddedToken(**state)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) not yet in the vocabulary at its end; returns how many were added."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        return super().add_tokens([self._raw_text_token(token, special_tokens) for token in new_tokens],
                                  special_tokens)

    @property
    def is_fast(self) -> bool:
        # as transformers' XLMTokenizer: no character offsets, since Moses rewrites the text
        return False

    # ---- options ----
    @property
    def do_lowercase_and_remove_accent(self) -> bool:
        return self._step.lowercase

    @do_lowercase_and_remove_accent.setter
    def do_lowercase_and_remove_accent(self, value: bool):
        self._step.lowercase = bool(value)

    @property
    def do_lower_case(self) -> bool:
        return self._step.lowercase

    # ---- the text pipeline, as named in transformers ----
    def moses_punct_norm(self, text: str, lang: str) -> str:
        """Moses punctuation normalisation for a language."""
        return self._step.moses.normalizer(lang).normalize(text)

    def moses_tokenize(self, text: str, lang: str) -> list[str]:
        """Moses tokenisation for a language (no escaping of XML characters)."""
        return self._step.moses.tokenize(text, lang)

    def moses_pipeline(self, text: str, lang: str) -> str:
        """Unicode punctuation replaced, Moses punctuation normalisation, non-printing characters removed."""
        return self._step.moses.pipeline(text, lang)

    def bpe(self, token: str) -> str:
        """The BPE pieces of one word, separated by spaces (the last one ends with `</w>`)."""
        return " ".join(bpe_pieces(token, self._ranks))

    def _tokenize(self, text: str, lang: str = "en", bypass_tokenizer: bool = False) -> list[str]:
        """BPE pieces of a text segmented with the Moses rules of `lang` (or split on whitespace only when
        `bypass_tokenizer`); special tokens are not matched. Calls of the tokenizer always segment as English,
        as in transformers."""
        if lang and self.lang2id and lang not in self.lang2id:
            self._warn_once(f"lang:{lang}", f"Language {lang!r} is not in the lang2id of this tokenizer "
                                            f"({', '.join(self.lang2id)}): check the language code.")
        if bypass_tokenizer:
            words = text.split()
        elif lang in _SEGMENTED_LANGUAGES:
            raise TokenizerError(f"Segmenting {lang!r} needs {_SEGMENTED_LANGUAGES[lang]}, which leanformers does not "
                                 f"run: segment the text into words yourself and pass bypass_tokenizer=True.")
        else:
            words = self._step.words(text, lang)
        return [piece for word in words if word for piece in bpe_pieces(word, self._ranks)]

    # ---- calls ----
    def _encode_plus(self, *args, return_offsets_mapping: bool = False, return_overflowing_tokens: bool = False,
                     **kwargs):
        if return_offsets_mapping:
            self._warn_once("offsets", "XLMTokenizer returns no offset_mapping (as in transformers): Moses "
                                       "rewrites the text before it is split into tokens.")
        self._overflow_rows = return_overflowing_tokens
        return super()._encode_plus(*args, return_overflowing_tokens=return_overflowing_tokens, **kwargs)

    def _run(self, batch, add_special_tokens: bool, is_pretokenized: bool):
        # transformers' XLM tokenizer truncates pairs with its own rule (the engine's differs on ties) and gives
        # both sequences token type 0 without special tokens: pairs are encoded side by side, then assembled
        backend = self._tokenizer
        if not any(_is_pair(item, is_pretokenized) for item in batch):
            return super()._run(batch, add_special_tokens, is_pretokenized)
        truncation, padding = backend.truncation, backend.padding
        if self.__dict__.get("_overflow_rows"):
            if truncation is not None and truncation["strategy"] == "longest_first":
                raise TokenizerError("Overflowing tokens cannot be returned for pairs truncated with "
                                     "'longest_first' (as in transformers): use truncation='only_first' or "
                                     "'only_second'.")
            return super()._run(batch, add_special_tokens, is_pretokenized)
        sides = [side for item in batch for side in (item if _is_pair(item, is_pretokenized) else (item,))]
        backend.no_truncation()
        backend.no_padding()
        try:
            encoded = iter(super()._run(sides, False, is_pretokenized))
            rows = []
            for item in batch:
                first, second = next(encoded), next(encoded) if _is_pair(item, is_pretokenized) else None
                if truncation is not None:
                    budget = truncation["max_length"] - (
                        backend.num_special_tokens_to_add(second is not None) if add_special_tokens else 0)
                    _truncate(first, second, budget, truncation)
                if add_special_tokens or second is None:
                    rows.append(backend.post_process(first, second, add_special_tokens=add_special_tokens))
                else:  # the engine would give the second sequence token type 1
                    rows.append(Encoding.merge([first, second], growing_offsets=False))
        finally:
            if truncation is not None:
                backend.enable_truncation(**truncation)
            if padding is not None:
                backend.enable_padding(**padding)
        if padding is not None:
            _pad(rows, padding)
        return rows

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Token strings of a text (and pair): the vocabulary entries of its ids."""
        ids = self._encode_plus(text, pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]
        return self.convert_ids_to_tokens(ids)

    def _clean(self, text: str, clean_up) -> str:
        clean_up = self.clean_up_tokenization_spaces if clean_up is None else clean_up
        return self.clean_up_tokenization(text) if clean_up else text

    # ---- saving, copying ----
    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, str]:
        """Write vocab.json and merges.txt (one merge per line, in rank order) to a folder."""
        folder = os.fspath(save_directory)
        if not os.path.isdir(folder):
            raise TokenizerError(f"{folder} is not a folder: save_vocabulary needs an existing folder.")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(folder, prefix + VOCAB_FILES_NAMES["vocab_file"])
        merges_path = os.path.join(folder, prefix + VOCAB_FILES_NAMES["merges_file"])
        with open(vocab_path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self._vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        with open(merges_path, "w", encoding="utf-8") as handle:
            handle.writelines(" ".join(pair) + "\n" for pair in sorted(self._ranks, key=self._ranks.get))
        return vocab_path, merges_path

    def save_pretrained(self, save_directory, legacy_format=None, filename_prefix=None, push_to_hub=False,
                        **kwargs) -> tuple[str, ...]:
        """Write tokenizer_config.json, the chat templates, vocab.json and merges.txt to a folder that both
        leanformers and transformers load."""
        from .files import _save_templates, save_config, save_folder

        folder, prefix = save_folder(save_directory, filename_prefix, push_to_hub)
        config_path = save_config(self, folder, prefix)
        templates = _save_templates(self, folder, prefix)
        return (config_path, *templates, *self.save_vocabulary(folder, filename_prefix))

    def __getstate__(self):
        # the Python steps of the engine cannot be serialised with it: they travel apart and are put back
        state = dict(self.__dict__)
        backend = self._tokenizer
        steps = backend.normalizer, backend.decoder
        backend.normalizer = backend.decoder = None
        try:
            state["_tokenizer"] = backend.to_str()
        finally:
            backend.normalizer, backend.decoder = steps
        return state

    def __setstate__(self, state):
        state = dict(state)
        backend = Tokenizer.from_str(state.pop("_tokenizer"))
        self.__dict__.update(state)
        object.__setattr__(self, "_tokenizer", backend)
        self._attach_steps(backend)
