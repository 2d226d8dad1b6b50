"""Transformer-XL tokenizer: a word-level vocabulary over Moses tokens (the `sacremoses` package).

The text step (Python) follows transformers' TransfoXLTokenizer: strip, optional lower-casing, Moses punctuation
normalisation, Moses tokenisation with aggressive dash splits and no escaping, then numbers split at their
separators (`1,000.5` -> `1 @,@ 000 @.@ 5`). Decoding runs the Moses detokenizer and joins the numbers back.

The vocabulary of released checkpoints ships as a pickle (`vocab.pkl`). It is never unpickled freely: a restricted
reader admits only plain data (dict, list, tuple, str, int, float, Counter, OrderedDict) and refuses anything else,
naming the file and the global it met. A plain `vocab.txt` (one token per line, in id order: the file
transformers also reads) or `vocab.json` (token -> id) works too; saving writes `vocab.txt`.

Without a vocabulary file the tokenizer starts empty, and one is built as in transformers 4.34.1: `count_file` /
`count_sents` count tokens, `build_vocab` keeps the `special` tokens first, then the counted ones by falling count
(`max_size`, `min_freq`); `encode_file` / `encode_sents` turn text into id tensors.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import re
import zipfile

from tokenizers.models import WordLevel

from ..errors import ResourceNotFoundError, TokenizerError
from .python_tokenizer import PythonTokenizer
from .xlm import INSTALL_HINT

_NUMBER_SEPARATOR = re.compile(r"(?<=\d)[,.](?=\d)")
_JOINED_NUMBERS = ((re.compile(r" @\,@ "), ","), (re.compile(r" @\.@ "), "."))
_PLAIN_DATA = {("builtins", "dict"): dict, ("builtins", "list"): list, ("builtins", "tuple"): tuple,
               ("builtins", "str"): str, ("builtins", "int"): int, ("builtins", "float"): float,
               ("collections", "Counter"): collections.Counter, ("collections", "OrderedDict"): collections.OrderedDict}
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the first pickle of a pre-1.6 torch.save file


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any other class or function is refused before it can be called."""

    def __init__(self, handle, path):
        super().__init__(handle)
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _PLAIN_DATA:
            return _PLAIN_DATA[module, name]
        raise TokenizerError(f"{self.path} holds the global {module}.{name}, which is not plain data: the vocabulary "
                             f"pickle is refused (nothing in it was run). Put a vocab.txt (one token per line, in id "
                             f"order) or a vocab.json beside it instead; transformers writes one with "
                             f"open('vocab.txt', 'w').write('\\n'.join(sorted(tok.sym2idx, key=tok.sym2idx.get))).")

    def persistent_load(self, pid):
        raise TokenizerError(f"{self.path} refers to external storage ({pid!r}); a vocabulary pickle holds plain data "
                             f"only. Use a vocab.txt or vocab.json instead.")


def read_vocab_pickle(path) -> dict:
    """The dict a Transformer-XL `vocab.pkl` / `vocab.bin` holds, read with the plain-data unpickler: a plain
    pickle, an old `torch.save` file (successive pickles) or a zip `torch.save` file (its data.pkl)."""
    path = os.fspath(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if member is None:
                    raise TokenizerError(f"{path} is a zip file without data.pkl; it is not a vocabulary.")
                with archive.open(member) as handle:
                    data = _PlainDataUnpickler(handle, path).load()
        else:
            with open(path, "rb") as handle:
                data = _PlainDataUnpickler(handle, path).load()
                if data == _TORCH_LEGACY_MAGIC:  # then the protocol version, system info, and the object
                    for _ in range(3):
                        data = _PlainDataUnpickler(handle, path).load()
    except TokenizerError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise TokenizerError(f"{path} is not a readable vocabulary pickle ({error}).") from None
    if not isinstance(data, dict) or not isinstance(data.get("sym2idx", data.get("idx2sym")), (dict, list)):
        raise TokenizerError(f"{path} does not hold a Transformer-XL vocabulary (a dict with sym2idx / idx2sym).")
    return data


def tokenize_numbers(words: list[str]) -> list[str]:
    """Split numbers at their separators: `5,000` -> `5 @,@ 000`, `1.73` -> `1 @.@ 73`."""
    return [part for word in words for part in _NUMBER_SEPARATOR.sub(r" @\g<0>@ ", word).split()]


def detokenize_numbers(text: str) -> str:
    for pattern, separator in _JOINED_NUMBERS:
        text = pattern.sub(separator, text)
    return text


def _sacremoses():
    try:
        import sacremoses
    except ImportError:
        raise TokenizerError("TransfoXLTokenizer needs the sacremoses package for its Moses tokenisation: install "
                             f"it with `{INSTALL_HINT}`.") from None
    return sacremoses


class TransfoXLTokenizer(PythonTokenizer):
    """Word-level tokenizer of Transformer-XL: no special tokens around the text, no attention mask by default."""

    vocab_files_names = {"pretrained_vocab_file": "vocab.pkl", "pretrained_vocab_file_torch": "vocab.bin",
                         "vocab_file": "vocab.txt", "vocab_json_file": "vocab.json"}
    model_input_names = ["input_ids"]
    defaults = {"unk_token": "<unk>", "eos_token": "<eos>", "additional_special_tokens": ["<formula>"],
                "special": None, "min_freq": 0, "max_size": None, "lower_case": False, "delimiter": None,
                "never_split": None, "language": "en", "clean_up_tokenization_spaces": True}

    def _read_vocabulary(self, kwargs) -> dict[str, int]:
        for key in ("special", "min_freq", "max_size", "lower_case", "delimiter", "language", "vocab_file"):
            setattr(self, key, kwargs.get(key))
        self.special, self.counter = self.special or [], collections.Counter()
        moses = _sacremoses()
        self.moses_punct_normalizer = moses.MosesPunctNormalizer(self.language)
        self.moses_tokenizer = moses.MosesTokenizer(self.language)
        self.moses_detokenizer = moses.MosesDetokenizer(self.language)
        symbols, unk = self._read_symbols(kwargs)
        self.idx2sym = symbols
        self.sym2idx = collections.OrderedDict((symbol, index) for index, symbol in enumerate(symbols))
        if unk is not None:
            self.unk_idx = unk
        elif "<UNK>" in self.sym2idx or "<unk>" in self.sym2idx:
            self.unk_idx = self.sym2idx.get("<UNK>", self.sym2idx.get("<unk>"))
        return dict(self.sym2idx)

    def _read_symbols(self, kwargs) -> tuple[list[str], int | None]:
        """(symbols in id order, the unknown id a pickle names) from the given vocabulary files."""
        text_file, json_file = kwargs.get("vocab_file"), kwargs.get("vocab_json_file")
        pickled = kwargs.get("pretrained_vocab_file") or kwargs.get("pretrained_vocab_file_torch")
        for path in (text_file, json_file, pickled):
            if path is not None and not os.path.isfile(os.fspath(path)):
                raise ResourceNotFoundError(f"No Transformer-XL vocabulary at {os.fspath(path)!r}: pass the path of "
                                            f"an existing file.")
        if text_file is not None and os.fspath(text_file).endswith(".json"):
            text_file, json_file = None, text_file
        if text_file is not None:
            with open(text_file, encoding="utf-8") as handle:
                words = [line.strip().split()[0] for line in handle if line.strip()]
            return list(dict.fromkeys(words)), None
        if json_file is not None:
            with open(json_file, encoding="utf-8") as handle:
                return [token for token, _ in sorted(json.load(handle).items(), key=lambda item: item[1])], None
        if pickled is not None:
            data = read_vocab_pickle(pickled)
            symbols = data.get("idx2sym") or [s for s, _ in sorted(data["sym2idx"].items(), key=lambda i: i[1])]
            return list(symbols), data.get("unk_idx")
        return [], None  # an empty vocabulary, to be built with count_file / count_sents and build_vocab

    @property
    def do_lower_case(self) -> bool:
        return bool(self.lower_case)

    @property
    def never_split(self) -> list[str]:
        saved = self.init_kwargs.get("never_split")
        return list(saved) if saved is not None else self.all_special_tokens

    @property
    def vocab_size(self) -> int:
        return len(self.idx2sym)

    def get_vocab(self) -> dict[str, int]:
        return {**self.sym2idx, **self.added_tokens_encoder}

    # ---- text -> tokens ----
    def _text_tokens(self, text: str, split_special_tokens: bool = False) -> list[str]:
        if self.lower_case:  # lower-cased before the added tokens are found, those tokens excepted
            protected = [*self.all_special_tokens, *(t.content for t in self.added_tokens_decoder.values()
                                                     if not t.special and t.normalized)]
            pattern = "(" + "|".join(map(re.escape, protected)) + ")|(.+?)"
            text = re.sub(pattern, lambda m: m.group(1) or m.group(2).lower(), text, flags=re.S)
        return super()._text_tokens(text, split_special_tokens)

    def moses_pipeline(self, text: str) -> list[str]:
        """Moses punctuation normalisation and tokenisation, then numbers split at their separators."""
        text = self.moses_punct_normalizer.normalize(text)
        words = self.moses_tokenizer.tokenize(text, aggressive_dash_splits=True, return_str=False, escape=False,
                                              protected_patterns=self.never_split)
        return tokenize_numbers(words)

    def _tokenize(self, text: str, add_eos: bool = False, add_double_eos: bool = False) -> list[str]:
        text = text.strip()
        if self.lower_case:
            text = text.lower()
        symbols = list(text) if self.delimiter == "" else self.moses_pipeline(text)
        if add_double_eos:  # the one-billion-words layout
            return ["<S>", *symbols, "<S>"]
        return [*symbols, "<eos>"] if add_eos else symbols

    def _convert_token_to_id(self, token: str) -> int:
        index = self.sym2idx.get(token)
        if index is not None:
            return index
        if hasattr(self, "unk_idx"):
            return self.unk_idx
        if not self.sym2idx:
            raise TokenizerError("The vocabulary is empty: pass vocab_file= or pretrained_vocab_file=, or build one "
                                 "with count_file() / count_sents() and build_vocab().")
        raise TokenizerError(f"{token!r} is not in the vocabulary, which has no <unk> token to stand for it.")

    def _convert_id_to_token(self, index: int) -> str:
        if not 0 <= index < len(self.idx2sym):
            raise TokenizerError(f"Id {index} is outside the vocabulary (0..{len(self.idx2sym) - 1}).")
        return self.idx2sym[index]

    # ---- building a vocabulary ----
    def _file_symbols(self, path) -> list[list[str]]:
        """The tokens of every line of a UTF-8 text file."""
        if not os.path.isfile(os.fspath(path)):
            raise ResourceNotFoundError(f"No text file at {os.fspath(path)!r}: pass the path of an existing file.")
        with open(path, encoding="utf-8") as handle:
            return [self.tokenize(line) for line in handle]

    def count_file(self, path, verbose: bool = False, add_eos: bool = False) -> list[list[str]]:
        """Count the tokens of every line of a UTF-8 text file; returns each line's tokens. As in transformers
        4.34.1, `add_eos` does not reach the tokenizer (no `<eos>` is counted), so that vocabularies agree."""
        sentences = self._file_symbols(path)
        self.count_sents(sentences)
        return sentences

    def count_sents(self, sents, verbose: bool = False) -> None:
        """Count the tokens of sentences that are already lists of tokens."""
        for symbols in sents:
            self.counter.update(symbols)

    def build_vocab(self) -> None:
        """(Re)build the vocabulary: from `vocab_file` when one was given, else the `special` tokens first, then the
        counted tokens by falling count (ties in first-seen order), at most `max_size` of them, each counted at
        least `min_freq` times. Added tokens keep their ids."""
        self.idx2sym, self.sym2idx = [], collections.OrderedDict()
        if self.vocab_file:
            symbols, _ = self._read_symbols({"vocab_file": self.vocab_file})
            if "<UNK>" not in symbols and "<unk>" not in symbols:
                raise TokenizerError(f"{self.vocab_file} has no <unk> (or <UNK>) token to stand for unknown words; "
                                     f"add one to the file.")
            for symbol in symbols:
                self._append(symbol)
            self.unk_idx = self.sym2idx.get("<UNK>", self.sym2idx.get("<unk>"))
        else:
            for symbol in self.special:
                self._append(symbol, special=True)
            for symbol, count in self.counter.most_common(self.max_size):
                if count < self.min_freq:
                    break
                self._append(symbol)
        self._sync_backend()

    def add_special(self, sym: str) -> None:
        """Append a special symbol, and remember its id as `<name>_idx` (`<unk>` -> `unk_idx`)."""
        self._append(sym, special=True)
        self._sync_backend()

    def add_symbol(self, sym: str) -> None:
        """Append a symbol to the vocabulary; a known symbol is left where it is."""
        self._append(sym)
        self._sync_backend()

    def _append(self, sym: str, special: bool = False) -> None:
        if sym not in self.sym2idx:
            self.idx2sym.append(sym)
            self.sym2idx[sym] = len(self.idx2sym) - 1
            if special:
                setattr(self, f"{sym.strip('<>')}_idx", self.sym2idx[sym])

    def _sync_backend(self) -> None:
        """The engine under the tokenizer holds the vocabulary too (its size, len()); added tokens keep their ids."""
        self._tokenizer.model = WordLevel(dict(self.sym2idx), unk_token=str(self.unk_token))
        self._added_cache = None

    def convert_to_tensor(self, symbols):
        """The ids of `symbols` as a torch LongTensor."""
        import torch

        return torch.tensor(self.convert_tokens_to_ids(list(symbols)), dtype=torch.long)

    def encode_sents(self, sents, ordered: bool = False, verbose: bool = False):
        """One LongTensor of ids per sentence of tokens, or (`ordered`) all of them concatenated."""
        import torch

        encoded = [self.convert_to_tensor(symbols) for symbols in sents]
        return torch.cat(encoded) if ordered else encoded

    def encode_file(self, path, ordered: bool = False, verbose: bool = False, add_eos: bool = True,
                    add_double_eos: bool = False):
        """encode_sents of a text file's lines; as in transformers 4.34.1, `add_eos` and `add_double_eos` do not
        reach the tokenizer."""
        return self.encode_sents(self._file_symbols(path), ordered)

    # ---- decoding ----
    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return detokenize_numbers(self.moses_detokenizer.detokenize(tokens)).strip()

    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None,
                spaces_between_special_tokens: bool = True, **kwargs) -> str:
        """Added tokens beyond the vocabulary are kept whole; the words between them are detokenized."""
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        tokens = [tokens] if isinstance(tokens, str) else tokens
        whole = {t for t, i in self.added_tokens_encoder.items() if t not in self.all_special_tokens} | {
            t for t in self.extra_special_tokens if self.convert_tokens_to_ids(t) >= self.vocab_size}
        parts, words = [], []
        for token in tokens:
            if token in whole:
                text = self.convert_tokens_to_string(words) if words else ""
                parts += [text] if text else []
                parts.append(token)
                words = []
            else:
                words.append(token)
        if words:
            parts.append(self.convert_tokens_to_string(words))
        text = (" " if spaces_between_special_tokens else "").join(parts)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else (
            clean_up_tokenization_spaces)
        return self.clean_up_tokenization(text) if clean else text

    # ---- saving ----
    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str]:
        """Write vocab.txt (one token per line, in id order), which transformers reads too; no pickle."""
        folder = os.fspath(save_directory)
        if not os.path.isdir(folder):
            raise TokenizerError(f"{folder} is not a folder: save_vocabulary needs an existing folder.")
        if any(not symbol or symbol != "".join(symbol.split()) for symbol in self.idx2sym):
            raise TokenizerError("A vocabulary token is empty or holds whitespace, which vocab.txt cannot hold.")
        path = os.path.join(folder, (f"{filename_prefix}-" if filename_prefix else "") + "vocab.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(symbol + "\n" for symbol in self.idx2sym)
        return (path,)
