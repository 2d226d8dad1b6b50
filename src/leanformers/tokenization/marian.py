"""Marian (opus-mt) tokenizer, on the call rules of `python_tokenizer.PythonTokenizer`.

Marian segments with SentencePiece itself (`sentencepiece.SentencePieceProcessor`), as transformers does: its ids
are the pieces of the SentencePiece model looked up in vocab.json, and no engine model gives those ids in every case
(a Unigram engine scores in double precision where SentencePiece breaks ties in single precision; an unknown stretch
of text is a piece that a shared vocab.json may know).
"""

from __future__ import annotations

import os
import shutil


from ..errors import ResourceNotFoundError, TokenizerError
from .python_tokenizer import SPIECE_UNDERLINE, PythonTokenizer, _read_json, _write_json


def _load_spm(path, options: dict):
    try:
        import sentencepiece
    except ImportError as err:
        raise ImportError("MarianTokenizer segments text with SentencePiece: `pip install leanformers[sentencepiece]`"
                          ) from err
    if path is None or not os.path.isfile(os.fspath(path)):
        raise ResourceNotFoundError(f"No SentencePiece model at {path!r}: MarianTokenizer needs source.spm and "
                                    f"target.spm; pass their paths or load a folder that has them.")
    processor = sentencepiece.SentencePieceProcessor(**options)
    processor.Load(os.fspath(path))
    return processor


class MarianTokenizer(PythonTokenizer):
    """Marian (opus-mt): inputs segmented by `source.spm`, targets (`text_target=`) by `target.spm`, pieces looked up
    in vocab.json (target_vocab.json for targets when `separate_vocabs`), `</s>` after the text. A language code at
    the start of a text (`>>fr<<`) is one token. Decoding reads the pieces with the source model when the vocabulary
    is shared (`use_source_tokenizer=False` picks the target model), with the target model otherwise."""

    vocab_files_names = {"source_spm": "source.spm", "target_spm": "target.spm", "vocab": "vocab.json",
                         "target_vocab_file": "target_vocab.json"}
    defaults = {"unk_token": "<unk>", "eos_token": "</s>", "pad_token": "<pad>", "model_max_length": 512,
                "source_lang": None, "target_lang": None, "separate_vocabs": False}
    options = ("source_lang", "target_lang", "separate_vocabs", "sp_model_kwargs")

    def _read_vocabulary(self, kwargs) -> dict[str, int]:
        if kwargs.get("source_spm") is None or kwargs.get("target_spm") is None or kwargs.get("vocab") is None:
            raise TokenizerError("MarianTokenizer needs source.spm, target.spm and vocab.json: pass source_spm=, "
                                 "target_spm= and vocab= (paths), or load a folder that has them.")
        encoder = _read_json(kwargs["vocab"], "Marian vocab.json")
        unk = str(kwargs.get("unk_token"))
        if unk not in encoder:
            raise TokenizerError(f"The unknown token {unk!r} is not in vocab.json: pass unk_token= with a token "
                                 f"that vocab.json holds.")
        self.separate_vocabs = bool(kwargs.get("separate_vocabs"))
        self.encoder = encoder
        if self.separate_vocabs:
            if kwargs.get("target_vocab_file") is None:
                raise TokenizerError("separate_vocabs=True needs the target vocabulary: pass target_vocab_file= "
                                     "(target_vocab.json), or load a folder that has it.")
            self.target_encoder = _read_json(kwargs["target_vocab_file"], "Marian target_vocab.json")
            self._id_to_token = {index: token for token, index in self.target_encoder.items()}
            self.supported_language_codes = []
        else:
            self._id_to_token = {index: token for token, index in encoder.items()}
            self.supported_language_codes = [token for token in encoder
                                             if token.startswith(">>") and token.endswith("<<")]
        self.sp_model_kwargs = dict(kwargs.get("sp_model_kwargs") or {})
        kwargs["sp_model_kwargs"] = self.sp_model_kwargs
        self.spm_files = [os.fspath(kwargs["source_spm"]), os.fspath(kwargs["target_spm"])]
        self.spm_source = _load_spm(kwargs["source_spm"], self.sp_model_kwargs)
        self.spm_target = _load_spm(kwargs["target_spm"], self.sp_model_kwargs)
        self._decode_use_source_tokenizer = False
        self._switch_to_input_mode()
        return encoder

    # ---- source / target ----
    def _switch_to_input_mode(self):
        self.current_spm, self.current_encoder = self.spm_source, self.encoder

    def _switch_to_target_mode(self):
        self.current_spm = self.spm_target
        if self.separate_vocabs:
            self.current_encoder = self.target_encoder

    @property
    def decoder(self) -> dict[int, str]:
        """id -> token of the vocabulary that decoding reads (the target one when `separate_vocabs`)."""
        return self._id_to_token

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def get_src_vocab(self) -> dict[str, int]:
        return dict(self.encoder, **self.added_tokens_encoder)

    def get_tgt_vocab(self) -> dict[str, int]:
        return dict(self.target_encoder if self.separate_vocabs else self.encoder, **self.added_tokens_encoder)

    # ---- tokens ----
    def remove_language_code(self, text: str) -> tuple[list[str], str]:
        """([the language code that starts the text], the rest); a code runs from `>>` to the first `<<`."""
        if text.startswith(">>"):
            end = text.find("<<")
            if end != -1:
                return [text[:end + 2]], text[end + 2:]
        return [], text

    def _tokenize(self, text: str) -> list[str]:
        code, text = self.remove_language_code(text)
        return code + self.current_spm.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        index = self.current_encoder.get(token)
        return self.current_encoder[str(self.unk_token)] if index is None else index

    def _convert_id_to_token(self, index: int) -> str:
        token = self._id_to_token.get(index)
        if token is not None:
            return token
        # an id outside the vocabulary is read as a piece of the SentencePiece model
        model = self.spm_source if self._decode_use_source_tokenizer else self.spm_target
        if not 0 <= index < model.get_piece_size():
            raise TokenizerError(f"Token id {index} is in neither the vocabulary nor the SentencePiece model "
                                 f"({model.get_piece_size()} pieces): check the ids.")
        return model.id_to_piece(index) or str(self.unk_token)

    # ---- special tokens: `A </s>`, and `A B </s>` for a pair ----
    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        return list(token_ids_0) + list(token_ids_1 or []) + [self.eos_token_id]

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return 1

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 for the special tokens among the ids (`<unk>` counts as text), and for the `</s>` that is added
        (with `already_has_special_tokens`, the mask of `token_ids_0` alone)."""
        special = set(self.all_special_ids) - {self.unk_token_id}
        if already_has_special_tokens:
            return [1 if index in special else 0 for index in token_ids_0]
        return [1 if index in special else 0 for index in [*token_ids_0, *(token_ids_1 or [])]] + [1]

    # ---- decoding ----
    def _decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None,
                **kwargs) -> str:
        self._decode_use_source_tokenizer = kwargs.pop("use_source_tokenizer", not self.separate_vocabs)
        return super()._decode(token_ids, skip_special_tokens, clean_up_tokenization_spaces, **kwargs)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Pieces -> text with the SentencePiece model that decoding reads; special tokens are kept as they are,
        each followed by a space."""
        model = self.spm_source if self._decode_use_source_tokenizer else self.spm_target
        specials = set(self.all_special_tokens)
        parts, pieces = [], []
        for token in tokens:
            if token in specials:
                parts += [model.decode_pieces(pieces), token, " "]
                pieces = []
            else:
                pieces.append(token)
        parts.append(model.decode_pieces(pieces))
        return "".join(parts).replace(SPIECE_UNDERLINE, " ").strip()

    # ---- saving ----
    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write vocab.json (and target_vocab.json), source.spm and target.spm to a folder."""
        folder = os.fspath(save_directory)
        if not os.path.isdir(folder):
            raise TokenizerError(f"{folder} is not a folder: save_vocabulary needs an existing folder.")
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        names = self.vocab_files_names
        written = [os.path.join(folder, prefix + names["vocab"])]
        _write_json(written[0], self.encoder)
        if self.separate_vocabs:
            written.append(os.path.join(folder, prefix + names["target_vocab_file"]))
            _write_json(written[-1], self.target_encoder)
        for name, source, model in zip((names["source_spm"], names["target_spm"]), self.spm_files,
                                       (self.spm_source, self.spm_target)):
            path = os.path.join(folder, prefix + name)
            if os.path.isfile(source):
                if os.path.abspath(source) != os.path.abspath(path):
                    shutil.copyfile(source, path)
            else:
                with open(path, "wb") as handle:
                    handle.write(model.serialized_model_proto())
            written.append(path)
        return tuple(written)
