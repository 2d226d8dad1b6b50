"""FlauBERT tokenizer: XLM's tokenizer (xlm.py) with FlauBERT's text step: LaTeX quotes (`` and '') made plain,
NFC composition, lower-casing only when `do_lowercase` (accents are kept), then the French Moses pipeline and
tokenisation, whatever language a call names."""

from __future__ import annotations

import unicodedata

from tokenizers import Tokenizer

from .xlm import XLMTokenizer, _TextStep


def flaubert_text(text: str, lowercase: bool) -> str:
    """FlauBERT's clean-up before Moses: double quotes for LaTeX quotes, NFC, then lower case if asked."""
    text = unicodedata.normalize("NFC", text.replace("``", '"').replace("''", '"'))
    return text.lower() if lowercase else text


class _FlaubertStep(_TextStep):
    """The engine's normalizer: FlauBERT's clean-up, then the French Moses words (and their BPE pieces)."""

    def words(self, text: str, lang: str = "fr") -> list[str]:
        return self.moses.words(flaubert_text(text, self.lowercase), "fr")


class FlaubertTokenizer(XLMTokenizer):
    """FlauBERT (French Moses pre-tokenisation, cased unless `do_lowercase`, BPE with `</w>` word ends):
    `<s> A </s>` and `<s> A </s> B </s>`, token type 1 for the second sequence."""

    defaults = {"do_lowercase": False, "do_lowercase_and_remove_accent": None}
    # as transformers 4.x, the reference for FlauBERT (5.x returns no token types by default)
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    options = ("do_lowercase", "lang2id", "id2lang")

    @classmethod
    def saved_class_name(cls) -> str:
        return "FlaubertTokenizer"

    def _make_backend(self, tokenizer_object, tokenizer_file, kwargs) -> Tokenizer:
        backend = super()._make_backend(tokenizer_object, tokenizer_file, kwargs)
        object.__setattr__(self, "_step", _FlaubertStep(bool(kwargs.get("do_lowercase")), self._step.ranks))
        self._attach_steps(backend)
        return backend

    def _adjust_kwargs(self, kwargs: dict) -> dict:
        # XLM's lower-casing with accent removal never applies to FlauBERT (transformers ignores the keyword too)
        kwargs.pop("do_lowercase_and_remove_accent", None)
        return super()._adjust_kwargs(kwargs)

    @property
    def do_lowercase(self) -> bool:
        return self._step.lowercase

    @do_lowercase.setter
    def do_lowercase(self, value: bool):
        self._step.lowercase = bool(value)

    @property
    def do_lowercase_and_remove_accent(self) -> bool:
        return False

    @do_lowercase_and_remove_accent.setter
    def do_lowercase_and_remove_accent(self, value: bool):
        pass  # always False for FlauBERT

    @property
    def do_lower_case(self) -> bool:
        return False

    def _tokenize(self, text: str, bypass_tokenizer: bool = False, **_ignored) -> list[str]:
        """BPE pieces of a text after FlauBERT's clean-up and French Moses tokenisation (or split on whitespace only
        when `bypass_tokenizer`); special tokens are not matched."""
        words = text.split() if bypass_tokenizer else self._step.words(text)
        return [piece for word in words if word for piece in self.bpe(word).split(" ")]
