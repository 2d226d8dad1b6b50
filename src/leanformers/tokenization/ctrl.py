"""CTRL tokenizer: words split on whitespace, BPE with `</w>` word ends, pieces named with `@@` continuations.

vocab.json names a piece that ends a word plainly (`lo`) and one that does not with `@@` (`hel@@`), while merges.txt
writes word ends with `</w>` (`l o</w>`): the engine's BPE cannot hold both spellings, so the merges run in Python
(`xlm.bpe_pieces`, remembered per word) and the pieces are looked up in vocab.json, a missing one being `<unk>`.
No special token is added around the text, and the calls follow transformers' Python tokenizers (see
`python_tokenizer.PythonTokenizer`).
"""

from __future__ import annotations

import json
import os
import re

from ..errors import ResourceNotFoundError, TokenizerError
from .python_tokenizer import PythonTokenizer
from .xlm import WORD_END, bpe_pieces

CONTINUATION = "@@"
# a word: non-whitespace characters and the newline after them; whitespace as Unicode's White_Space property
# defines it (the separators U+001C..U+001F are not whitespace here, though Python's `\s` takes them)
_WORD = re.compile("[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+\n?")
_CACHE_LIMIT = 1 << 17  # words whose pieces are remembered
# the control codes of the released CTRL model: name -> id in its vocabulary
CONTROL_CODES = {
    "Pregnancy": 168629, "Christianity": 7675, "Explain": 106423, "Fitness": 63440, "Saving": 63163, "Ask": 27171,
    "Ass": 95985, "Joke": 163509, "Questions": 45622, "Thoughts": 49605, "Retail": 52342, "Feminism": 164338,
    "Writing": 11992, "Atheism": 192263, "Netflix": 48616, "Computing": 39639, "Opinion": 43213, "Alone": 44967,
    "Funny": 58917, "Gaming": 40358, "Human": 4088, "India": 1331, "Joker": 77138, "Diet": 36206, "Legal": 11859,
    "Norman": 4939, "Tip": 72689, "Weight": 52343, "Movies": 46273, "Running": 23425, "Science": 2090,
    "Horror": 37793, "Confession": 60572, "Finance": 12250, "Politics": 16360, "Scary": 191985, "Support": 12654,
    "Technologies": 32516, "Teenage": 66160, "Event": 32769, "Learned": 67460, "Notion": 182770,
    "Wikipedia": 37583, "Books": 6665, "Extract": 76050, "Confessions": 102701, "Conspiracy": 75932,
    "Links": 63674, "Narcissus": 150425, "Relationship": 54766, "Relationships": 134796, "Reviews": 41671,
    "News": 4256, "Translation": 26820, "multilingual": 128406,
}


def _read_merges(path) -> list[tuple[str, ...]]:
    """The merges of merges.txt: every line between the first (a version header) and the last newline."""
    with open(path, encoding="utf-8") as handle:
        return [tuple(line.split()) for line in handle.read().split("\n")[1:-1]]


class CTRLTokenizer(PythonTokenizer):
    """CTRL (BPE with `@@` continuations): no special tokens around the text, token types all 0."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    defaults = {"unk_token": "<unk>"}
    control_codes = CONTROL_CODES
    token_type_ids_pattern = "all_zeros"

    def _read_vocabulary(self, kwargs) -> dict[str, int]:
        vocab_file, merges_file = kwargs.get("vocab_file"), kwargs.get("merges_file")
        if vocab_file is None or merges_file is None:
            raise TokenizerError("CTRLTokenizer needs vocab.json and merges.txt: pass vocab_file= and merges_file=, "
                                 "or load a folder that has both.")
        for path, what in ((vocab_file, "vocab.json"), (merges_file, "merges.txt")):
            if not os.path.isfile(os.fspath(path)):
                raise ResourceNotFoundError(f"No CTRL {what} at {os.fspath(path)!r}: pass the path of an existing "
                                            f"file.")
        with open(vocab_file, encoding="utf-8") as handle:
            self.encoder = json.load(handle)
        self._id_to_token = {index: token for token, index in self.encoder.items()}
        self._merges = _read_merges(merges_file)
        # a pair listed twice keeps its last rank; lines that are not pairs never match
        self.bpe_ranks = {merge: rank for rank, merge in enumerate(self._merges) if len(merge) == 2}
        self.cache = {}
        return self.encoder

    @property
    def decoder(self) -> dict[int, str]:
        """id -> token of the vocabulary."""
        return self._id_to_token

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def bpe(self, token: str) -> str:
        """The pieces of one word separated by spaces, each but the last ending with `@@`."""
        pieces = self.cache.get(token)
        if pieces is None:
            if len(self.cache) >= _CACHE_LIMIT:
                self.cache.clear()
            # a one-character word is its own piece; otherwise the last piece loses its `</w>`
            pieces = token if len(token) < 2 else (CONTINUATION + " ").join(bpe_pieces(token, self.bpe_ranks))[
                :-len(WORD_END)]
            self.cache[token] = pieces
        return pieces

    def _tokenize(self, text: str) -> list[str]:
        return [piece for word in _WORD.findall(text) for piece in self.bpe(word).split(" ")]

    def _convert_token_to_id(self, token: str) -> int:
        index = self.encoder.get(token)
        return self.encoder.get(str(self.unk_token)) if index is None else index

    def _convert_id_to_token(self, index: int) -> str:
        return self._id_to_token.get(index, str(self.unk_token))

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return " ".join(tokens).replace(CONTINUATION + " ", "").strip()

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, str]:
        """Write vocab.json and merges.txt (a version header, then one merge per line in rank order)."""
        folder = os.fspath(save_directory)
        if not os.path.isdir(folder):
            raise TokenizerError(f"{folder} is not a folder: save_vocabulary needs an existing folder.")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        vocab_path = os.path.join(folder, prefix + self.vocab_files_names["vocab_file"])
        merges_path = os.path.join(folder, prefix + self.vocab_files_names["merges_file"])
        with open(vocab_path, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.encoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        with open(merges_path, "w", encoding="utf-8") as handle:
            handle.write("#version: 0.2\n")
            handle.writelines(" ".join(merge) + "\n" for merge in self._merges)
        return vocab_path, merges_path
