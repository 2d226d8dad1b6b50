"""Reformer's tokenizer: the pieces of a SentencePiece model as a BPE vocabulary (merges recovered from the
pieces), runs of spaces collapsed, no special tokens around the text."""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, normalizers
from tokenizers.models import BPE

from .families import _metaspace, _SentencePieceFamily
from .sentencepiece_converters import _add_piece_tokens, _rank_merges, load_sentencepiece_model
from .templates import template


class ReformerTokenizer(_SentencePieceFamily):
    """Reformer (BPE over SentencePiece pieces): `A` and `A B`, with no special tokens added."""

    defaults = {"eos_token": "</s>", "unk_token": "<unk>"}

    def _backend_from_vocab(self, kwargs):
        if not kwargs.get("vocab_file"):
            return None
        spm = load_sentencepiece_model(kwargs["vocab_file"])
        vocab = {piece: i for i, (piece, _, _) in enumerate(spm.pieces)}
        backend = Tokenizer(BPE(vocab, _rank_merges(vocab), unk_token=str(kwargs["unk_token"]), fuse_unk=True,
                                byte_fallback=False, dropout=None))
        if spm.charsmap:
            backend.normalizer = normalizers.Precompiled(spm.charsmap)
        _add_piece_tokens(backend, spm)
        # the control pieces of the model file are the extra special tokens, as in transformers
        kwargs["additional_special_tokens"] = [token for _, token in sorted(backend.get_added_tokens_decoder().items())
                                               if token.special and token.content != str(kwargs["unk_token"])]
        return backend

    def _configure_pipeline(self):
        charsmap = self._charsmap_normalizer()
        squeeze = normalizers.Replace(Regex(" {2,}"), " ")
        self._tokenizer.normalizer = normalizers.Sequence([charsmap, squeeze]) if charsmap is not None else None
        self._tokenizer.pre_tokenizer, self._tokenizer.decoder = _metaspace("always")

    def _family_template(self):
        return template("$A:0", "$A:0 $B:1", [])

# transformers 5 names the classes without "Fast"; the old names stay as aliases
ReformerTokenizerFast = ReformerTokenizer
