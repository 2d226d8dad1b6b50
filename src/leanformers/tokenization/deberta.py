"""DeBERTa's tokenizers: GPT-2's byte-level BPE (DeBERTa) and a SentencePiece Unigram model (DeBERTa-v2/v3), both
with `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` (token types 0, then 1 for B and its [SEP])."""

from __future__ import annotations

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import Unigram

from .families import SPIECE_UNDERLINE, GPT2Tokenizer, _Family, _with_lstrip
from .templates import template

_SPECIALS = {"bos_token": "[CLS]", "eos_token": "[SEP]", "sep_token": "[SEP]", "cls_token": "[CLS]",
             "unk_token": "[UNK]", "pad_token": "[PAD]", "mask_token": "[MASK]"}


def _cls_sep_template(tokenizer):
    cls, sep = str(tokenizer.cls_token), str(tokenizer.sep_token)
    return template(f"{cls}:0 $A:0 {sep}:0", f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                    [(cls, tokenizer._token_id("cls_token", 0)), (sep, tokenizer._token_id("sep_token", 0))])


class DebertaTokenizer(GPT2Tokenizer):
    """DeBERTa (GPT-2's byte-level BPE and vocabulary, BERT-style special tokens); the mask token eats the space
    before it, as a word of its own would."""

    model_input_names = ["input_ids", "attention_mask", "token_type_ids"]
    defaults = {"errors": "replace", **_SPECIALS, "add_prefix_space": False}
    template_overrides_file = True

    def _adjust_kwargs(self, kwargs):
        mask = kwargs.get("mask_token")
        if isinstance(mask, AddedToken):  # also one read from a tokenizer.json saved without lstrip
            mask = AddedToken(**{**mask.__getstate__(), "lstrip": True, "rstrip": False})
        kwargs["mask_token"] = mask = _with_lstrip(mask, special=True)
        decoder = kwargs.get("added_tokens_decoder") or {}
        for index, token in decoder.items():
            if mask is not None and str(token) == str(mask):
                decoder[index] = mask
        return kwargs

    def _family_template(self):
        return _cls_sep_template(self)


class DebertaV2Tokenizer(_Family):
    """DeBERTa-v2/v3 (SentencePiece Unigram from `spm.model`): whitespace runs folded, NFC, optional lower-casing
    (`do_lower_case`) and punctuation split (`split_by_punct`), then '▁' word marks."""

    vocab_files_names = {"vocab_file": "spm.model"}
    model_input_names = ["input_ids", "attention_mask", "token_type_ids"]
    defaults = {"do_lower_case": False, "split_by_punct": False, **_SPECIALS, "add_prefix_space": True}
    options = ("do_lower_case", "split_by_punct", "add_prefix_space")

    def _backend_from_vocab(self, kwargs):
        vocab = kwargs.get("vocab")
        if isinstance(vocab, list):
            pieces = [tuple(piece) for piece in vocab]
            unk = str(kwargs.get("unk_token"))
            unk_id = pieces.index((unk, 0.0)) if (unk, 0.0) in pieces else kwargs.get("unk_id", 1)
            return Tokenizer(Unigram(pieces, unk_id=unk_id, byte_fallback=False))
        if not kwargs.get("vocab_file"):
            return None
        from .sentencepiece_converters import _add_piece_tokens, load_sentencepiece_model

        spm = load_sentencepiece_model(kwargs["vocab_file"])
        backend = Tokenizer(Unigram(spm.scores, unk_id=spm.unk_id, byte_fallback=False))
        _add_piece_tokens(backend, spm)
        # the control and user-defined pieces of the model file are the extra special tokens, as in transformers
        kwargs["additional_special_tokens"] = [token for _, token in sorted(backend.get_added_tokens_decoder().items())]
        kwargs["unk_id"] = spm.unk_id
        return backend

    def _configure_pipeline(self):
        steps = [normalizers.Lowercase()] if self.do_lower_case else []
        steps += [normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " "), normalizers.NFC(),
                  normalizers.Strip(left=False, right=True)]
        self._tokenizer.normalizer = normalizers.Sequence(steps)
        scheme = "always" if self.add_prefix_space else "first"
        words = [pre_tokenizers.Punctuation(behavior="isolated")] if self.split_by_punct else []
        words.append(pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme=scheme))
        self._tokenizer.pre_tokenizer = pre_tokenizers.Sequence(words)
        self._tokenizer.decoder = decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme=scheme)

    def _family_template(self):
        return _cls_sep_template(self)

# transformers 5 names the classes without "Fast"; the old names stay as aliases
DebertaTokenizerFast = DebertaTokenizer
DebertaV2TokenizerFast = DebertaV2Tokenizer
