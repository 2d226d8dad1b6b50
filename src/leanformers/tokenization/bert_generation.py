"""BertGeneration tokenizer: SentencePiece itself (`spiece.model`, through the `sentencepiece` package) segments the
text, as transformers' Python tokenizer does, with the call rules of `python_tokenizer.PythonTokenizer`. Ids are the
pieces of the model; no special token is added around the text."""

from __future__ import annotations

import os
import shutil

from ..errors import ResourceNotFoundError, TokenizerError
from .python_tokenizer import SPIECE_UNDERLINE, PythonTokenizer


def _load_spm(path: str, options: dict):
    try:
        import sentencepiece
    except ImportError as err:
        raise ImportError("BertGenerationTokenizer segments text with SentencePiece: "
                          "`pip install leanformers[sentencepiece]`") from err
    if not os.path.isfile(path):
        raise ResourceNotFoundError(f"No SentencePiece model at {path!r}: pass the path of spiece.model.")
    processor = sentencepiece.SentencePieceProcessor(**options)
    processor.Load(path)
    return processor


class BertGenerationTokenizer(PythonTokenizer):
    """BertGeneration (SentencePiece): `A` and `A B`, no special tokens added; `<pad>` and `<::::>` (the separator)
    are added after the pieces when the model file lacks them."""

    vocab_files_names = {"vocab_file": "spiece.model"}
    defaults = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "sep_token": "<::::>"}
    options = ("sp_model_kwargs",)

    def _read_vocabulary(self, kwargs) -> dict[str, int]:
        if kwargs.get("vocab_file") is None:
            raise TokenizerError("BertGenerationTokenizer needs spiece.model: pass vocab_file=, or load a folder "
                                 "that has it.")
        self.vocab_file = os.fspath(kwargs["vocab_file"])
        self.sp_model_kwargs = dict(kwargs.get("sp_model_kwargs") or {})
        kwargs["sp_model_kwargs"] = self.sp_model_kwargs
        self.sp_model = _load_spm(self.vocab_file, self.sp_model_kwargs)
        return {self.sp_model.id_to_piece(index): index for index in range(self.sp_model.get_piece_size())}

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def _tokenize(self, text: str) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        if not 0 <= index < self.sp_model.get_piece_size():
            raise TokenizerError(f"Token id {index} is not in the SentencePiece model "
                                 f"({self.sp_model.get_piece_size()} pieces): check the ids.")
        return self.sp_model.id_to_piece(index)

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace(SPIECE_UNDERLINE, " ").strip()

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write spiece.model to a folder (a copy of the file read, or the model held in memory)."""
        folder = os.fspath(save_directory)
        if not os.path.isdir(folder):
            raise TokenizerError(f"{folder} is not a folder: save_vocabulary needs an existing folder.")
        path = os.path.join(folder, (f"{filename_prefix}-" if filename_prefix else "") + "spiece.model")
        if os.path.isfile(self.vocab_file):
            if os.path.abspath(self.vocab_file) != os.path.abspath(path):
                shutil.copyfile(self.vocab_file, path)
        else:
            with open(path, "wb") as handle:
                handle.write(self.sp_model.serialized_model_proto())
        return (path,)
