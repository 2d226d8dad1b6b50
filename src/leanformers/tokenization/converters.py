"""Build a `tokenizers.Tokenizer` from legacy vocabulary files.

Each builder returns the model, normalizer, pre-tokenizer and decoder that transformers 5 puts behind the same
files; the post-processor (special-token templates) and the named special tokens are set by the tokenizer classes.

- `wordpiece_tokenizer`: BERT-style `vocab.txt`.
- `byte_level_bpe_tokenizer`: GPT-2 / RoBERTa / BART `vocab.json` + `merges.txt`.
- `sentencepiece_tokenizer`: a SentencePiece `.model` file, dressed for one model family
  (see `sentencepiece_converters.py`).
- `tokenizer_from_legacy_files`: pick the right builder from the files a folder holds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping

from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE, WordPiece

from ..errors import ResourceNotFoundError, TokenizerError
from .sentencepiece_converters import SENTENCEPIECE_FAMILIES, sentencepiece_family_from_json, sentencepiece_tokenizer

__all__ = [
    "wordpiece_tokenizer",
    "byte_level_bpe_tokenizer",
    "sentencepiece_tokenizer",
    "tokenizer_from_legacy_files",
    "family_tokenizer_from_json",
    "WORDPIECE_FAMILIES",
    "BYTE_LEVEL_FAMILIES",
    "SENTENCEPIECE_FAMILIES",
    "SENTENCEPIECE_FILE_NAMES",
]

# Families (model types, "_" written "-") whose legacy files are a WordPiece `vocab.txt`.
WORDPIECE_FAMILIES = frozenset(
    {"wordpiece", "bert", "distilbert", "electra", "funnel", "layoutlm", "lxmert", "mobilebert", "squeezebert",
     "retribert", "dpr", "convbert"}
)
# Families whose legacy files are a byte-level BPE `vocab.json` + `merges.txt`.
BYTE_LEVEL_FAMILIES = frozenset(
    {"byte-level-bpe", "gpt2", "roberta", "bart", "longformer", "led", "blenderbot", "codegen", "gpt-neo",
     "gpt-neox", "opt", "deberta", "markuplm"}
)
# SentencePiece file names, in the order a folder is searched.
SENTENCEPIECE_FILE_NAMES = ("spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "source.spm")


def _existing_file(path, what: str) -> str:
    """`path` as a string, or a ResourceNotFoundError that names the missing file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ResourceNotFoundError(f"{what} not found at {path!r}: pass the path of an existing file.")
    return path


def wordpiece_tokenizer(
    vocab_file,
    do_lower_case: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
    never_split: Iterable[str] | None = None,
    unk_token: str = "[UNK]",
    *,
    clean_text: bool = True,
    continuing_subword_prefix: str = "##",
    max_input_chars_per_word: int = 100,
) -> Tokenizer:
    """BERT tokenisation from a `vocab.txt` (one token per line, the line number is the id) or a token->id dict.

    The normalizer cleans control characters, isolates CJK ideographs (`tokenize_chinese_chars`), lower-cases and
    strips accents (`strip_accents=None` follows `do_lower_case`, as BERT does); the pre-tokenizer splits on
    whitespace and punctuation; WordPiece marks word continuations with `##`. Tokens in `never_split` that the
    vocabulary holds are kept whole (matched on the raw text as whole words). No post-processor.
    """
    if isinstance(vocab_file, Mapping):
        vocab = dict(vocab_file)
    else:
        # tokenizers' own reader: the same parsing (trailing whitespace dropped) as transformers' conversion
        vocab = WordPiece.read_file(_existing_file(vocab_file, "WordPiece vocabulary (vocab.txt)"))
    if str(unk_token) not in vocab:
        raise TokenizerError(
            f"The unknown token {str(unk_token)!r} is not in the WordPiece vocabulary: pass `unk_token=` with a token "
            "that the vocabulary holds."
        )
    tokenizer = Tokenizer(
        WordPiece(
            vocab,
            unk_token=str(unk_token),
            continuing_subword_prefix=continuing_subword_prefix,
            max_input_chars_per_word=max_input_chars_per_word,
        )
    )
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=clean_text,
        handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents,
        lowercase=do_lower_case,
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix=continuing_subword_prefix)
    kept = [token for token in (never_split or ()) if token in vocab]
    if kept:
        tokenizer.add_tokens([AddedToken(token, single_word=True, normalized=False) for token in kept])
    return tokenizer


def byte_level_bpe_tokenizer(
    vocab_file,
    merges_file,
    add_prefix_space: bool = False,
    trim_offsets: bool = True,
    unk_token: str | None = None,
) -> Tokenizer:
    """GPT-2 / RoBERTa / BART byte-level BPE from `vocab.json` + `merges.txt` (or a token->id dict and a merges list).

    Every byte maps to a printable character before BPE, so no input is ever unknown. `add_prefix_space` puts a space
    before the first word (as if it followed another word). `trim_offsets` is recorded on the byte-level components;
    offsets are trimmed by the post-processor that the tokenizer class sets (RoBERTa's), not here.
    """
    if isinstance(vocab_file, Mapping):
        vocab = dict(vocab_file)
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges_file]
    else:
        vocab, merges = BPE.read_file(
            _existing_file(vocab_file, "BPE vocabulary (vocab.json)"),
            _existing_file(merges_file, "BPE merges (merges.txt)"),
        )
    tokenizer = Tokenizer(
        BPE(
            vocab,
            merges,
            dropout=None,
            unk_token=None if unk_token is None else str(unk_token),
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
        )
    )
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, trim_offsets=trim_offsets)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def tokenizer_from_legacy_files(folder_files: Mapping[str, os.PathLike | str], family: str, **options) -> Tokenizer:
    """Build the backend tokenizer of `family` from the legacy files of a folder.

    `folder_files` maps file names (`vocab.txt`, `vocab.json`, `merges.txt`, `spiece.model`,
    `sentencepiece.bpe.model`, `tokenizer.model`, `source.spm`, ...) to their paths; `options` go to the builder
    (`do_lower_case=`, `add_prefix_space=`, `extra_ids=`, ...). Families: a model type such as "bert", "gpt2",
    "roberta", or one of `SENTENCEPIECE_FAMILIES` ("t5", "albert", "xlm-roberta", "llama", ...).
    """
    files = {name: os.fspath(path) for name, path in folder_files.items() if path is not None}
    key = family.lower().replace("_", "-")
    if key in SENTENCEPIECE_FAMILIES:
        model_file = next((files[name] for name in SENTENCEPIECE_FILE_NAMES if name in files), None)
        if model_file is None:
            model_file = next((path for name, path in files.items() if name.endswith((".model", ".spm"))), None)
        if model_file is None:
            raise ResourceNotFoundError(
                f"No SentencePiece model among {sorted(files)} for the {family!r} tokenizer: the folder needs one of "
                f"{', '.join(SENTENCEPIECE_FILE_NAMES)}."
            )
        if key == "marian" and "vocab" not in options and "vocab.json" in files:
            options["vocab"] = files["vocab.json"]
        return sentencepiece_tokenizer(model_file, key, **options)
    if key in WORDPIECE_FAMILIES or (
        "vocab.txt" in files and "merges.txt" not in files and key not in BYTE_LEVEL_FAMILIES
    ):
        if "vocab.txt" not in files:
            raise ResourceNotFoundError(
                f"The {family!r} tokenizer needs a vocab.txt; the folder has {sorted(files)}. Add vocab.txt or a "
                "tokenizer.json."
            )
        return wordpiece_tokenizer(files["vocab.txt"], **options)
    if "vocab.json" in files and "merges.txt" in files:
        return byte_level_bpe_tokenizer(files["vocab.json"], files["merges.txt"], **options)
    raise TokenizerError(
        f"Cannot build a {family!r} tokenizer from {sorted(files)}: expected vocab.txt (WordPiece), vocab.json + "
        f"merges.txt (byte-level BPE) or a SentencePiece model ({', '.join(SENTENCEPIECE_FILE_NAMES)})."
    )


def family_tokenizer_from_json(tokenizer_json, family: str, **options) -> Tokenizer:
    """Rebuild a tokenizer.json the way transformers 5's tokenizer class for `family` does.

    Those classes keep only the vocabulary (and merges) of a tokenizer.json and set their own normalizer,
    pre-tokenizer, decoder and model settings from their configuration (`options`: `do_lower_case=`,
    `add_prefix_space=`, `legacy=`, ...). This matters where a file was written with other settings, such as a
    Llama tokenizer.json saved with the legacy normalizer. `tokenizer_json` is a path or a `Tokenizer`. Added tokens,
    the post-processor, padding and truncation are not carried over: the tokenizer class sets them.
    """
    key = family.lower().replace("_", "-")
    if key in SENTENCEPIECE_FAMILIES:
        return sentencepiece_family_from_json(tokenizer_json, key, **options)
    if not isinstance(tokenizer_json, Tokenizer):
        tokenizer_json = Tokenizer.from_file(_existing_file(tokenizer_json, "tokenizer.json"))
    model = json.loads(tokenizer_json.to_str()).get("model", {})
    if key in WORDPIECE_FAMILIES and model.get("type") == "WordPiece":
        return wordpiece_tokenizer(model["vocab"], **options)
    if key in BYTE_LEVEL_FAMILIES and model.get("type") == "BPE":
        return byte_level_bpe_tokenizer(model["vocab"], model.get("merges", []), **options)
    raise TokenizerError(
        f"Cannot rebuild a {model.get('type')} tokenizer.json as a {family!r} tokenizer: families are "
        f"{', '.join(sorted(WORDPIECE_FAMILIES | BYTE_LEVEL_FAMILIES | SENTENCEPIECE_FAMILIES))}."
    )
