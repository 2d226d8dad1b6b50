"""PreTrainedTokenizerFast: the transformers tokenizer API over a Rust `tokenizers.Tokenizer`.

The Rust engine does the tokenization, truncation and padding of whole batches at once; this class keeps the
special tokens, the options of a checkpoint, and turns the Rust encodings into a BatchEncoding (NumPy first, so
tensors are built from arrays, never from nested Python lists).
"""

from __future__ import annotations

import copy
import os

from tokenizers import AddedToken, Tokenizer

from ..errors import ResourceNotFoundError, TokenizerError
from . import templates
from .calls import EncodeMixin
from .strategies import VERY_LARGE_INTEGER

SPECIAL_TOKENS_ATTRIBUTES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                             "mask_token"]
_EXTRA = ("extra_special_tokens", "additional_special_tokens")


def _strip_id(key: str) -> str:
    if key.endswith("_ids"):
        return key[:-4]
    return key[:-3] if key.endswith("_id") else key


def _to_py(value):
    """Tensors, arrays and NumPy scalars (also inside lists) -> plain Python ints and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_py(item) for item in value]
    return value


class PreTrainedTokenizerFast(EncodeMixin):
    """A tokenizer backed by the Rust `tokenizers` engine, with the transformers API (`__call__`, `decode`,
    special tokens, padding, truncation, `from_pretrained`/`save_pretrained`)."""

    vocab_files_names: dict[str, str] = {}  # legacy vocabulary files: __init__ keyword -> file name
    model_input_names: list[str] = ["input_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"
    SPECIAL_TOKENS_ATTRIBUTES = SPECIAL_TOKENS_ATTRIBUTES
    defaults: dict = {}  # family defaults of __init__ keywords (special tokens and options)
    options: tuple = ()  # __init__ keywords that are also attributes (do_lower_case, add_prefix_space, ...)

    def __init__(self, *args, tokenizer_object=None, tokenizer_file=None, **kwargs):
        kwargs = {**copy.deepcopy(self._all_defaults()), **self._positional(args), **kwargs}
        # A checkpoint's files get the family's text pipeline, as transformers rebuilds it from the options; an
        # engine handed over directly (tokenizer_object= / tokenizer_file=) is used as it is.
        rebuild = kwargs.pop("_from_files", False) or (tokenizer_object is None and tokenizer_file is None)
        backend = self._make_backend(tokenizer_object, tokenizer_file, kwargs)
        kwargs = self._adjust_kwargs(kwargs)
        object.__setattr__(self, "_tokenizer", backend)
        self._json_truncation, self._json_padding = backend.truncation, backend.padding
        if backend.truncation is not None:
            kwargs.setdefault("truncation_side", backend.truncation["direction"])
        if backend.padding is not None:
            kwargs.setdefault("pad_token", backend.padding["pad_token"])
            kwargs.setdefault("padding_side", backend.padding["direction"])
        explicit_bos_eos = "add_bos_token" in kwargs or "add_eos_token" in kwargs
        self._init_settings(kwargs)
        if rebuild:
            self._configure_pipeline()
        self._register_added_tokens(kwargs.get("added_tokens_decoder") or {}, rebuild)
        self._finish_post_processor(explicit_bos_eos)
        backend.encode_special_tokens = self.split_special_tokens

    # ---- construction ----
    @classmethod
    def _all_defaults(cls) -> dict:
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("defaults", {}))
        return merged

    def _positional(self, args) -> dict:
        names = list(self.vocab_files_names)
        out = {}
        for index, value in enumerate(args):
            if isinstance(value, (str, os.PathLike)) and index < len(names):
                out[names[index]] = os.fspath(value)
            elif index < 2:
                out[("vocab", "merges")[index]] = value
            else:
                raise TokenizerError(f"{type(self).__name__} takes at most 2 positional arguments (vocabulary, "
                                     f"merges); pass the others by keyword.")
        return out

    def _adjust_kwargs(self, kwargs: dict) -> dict:
        """Family hook: rewrite __init__ keywords before use (e.g. default extra special tokens)."""
        return kwargs

    def _make_backend(self, tokenizer_object, tokenizer_file, kwargs) -> Tokenizer:
        if tokenizer_object is not None:
            return copy.deepcopy(tokenizer_object)
        if tokenizer_file is not None:
            if not os.path.isfile(tokenizer_file):
                raise ResourceNotFoundError(f"No tokenizer file {tokenizer_file}. Check the path.")
            try:
                return Tokenizer.from_file(os.fspath(tokenizer_file))
            except Exception as err:  # the engine's message names neither the file nor the fix
                raise TokenizerError(f"Cannot read tokenizer file {tokenizer_file}: {err}. The file is damaged, "
                                     f"truncated or not a tokenizer.json: delete it and download or save the "
                                     f"tokenizer again.") from None
        backend = self._backend_from_vocab(kwargs)
        if backend is None:
            files = ", ".join(["tokenizer.json", *self.vocab_files_names.values()])
            raise TokenizerError(f"{type(self).__name__} needs a vocabulary: pass tokenizer_file= or "
                                 f"tokenizer_object=, or load a folder with one of: {files}.")
        return backend

    def _backend_from_vocab(self, kwargs) -> Tokenizer | None:
        """Family hook: build the engine from legacy vocabulary files (vocab_file, merges_file) or a vocab dict;
        may set keywords that the files decide (e.g. the special pieces of a SentencePiece model)."""
        return None

    def _configure_pipeline(self):
        """Family hook: set the normalizer, pre-tokenizer and decoder of the engine from the family options."""

    def _family_template(self):
        """Family hook: the family's special-token post-processor, or None to keep the engine's."""
        return None

    template_overrides_file = True  # the family template replaces the post-processor found in tokenizer.json

    def _init_settings(self, kwargs: dict):
        kwargs = dict(kwargs)
        if "additional_special_tokens" in kwargs and "extra_special_tokens" not in kwargs:
            kwargs["extra_special_tokens"] = kwargs.pop("additional_special_tokens")
        kwargs.pop("additional_special_tokens", None)
        self.init_inputs = ()
        self.init_kwargs = copy.deepcopy(kwargs)
        self.name_or_path = kwargs.pop("name_or_path", "")
        self.verbose = kwargs.pop("verbose", False)
        self._special_tokens_map = dict.fromkeys(SPECIAL_TOKENS_ATTRIBUTES)
        self._extra_special_tokens = []
        self._set_special_tokens(kwargs)
        max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = max_length if max_length is not None else VERY_LARGE_INTEGER
        for side in ("padding_side", "truncation_side"):
            value = kwargs.pop(side, getattr(type(self), side))
            if value not in ("right", "left"):
                raise TokenizerError(f"{side} must be 'right' or 'left', not {value!r}.")
            setattr(self, side, value)
        self.model_input_names = list(kwargs.pop("model_input_names", type(self).model_input_names))
        self.clean_up_tokenization_spaces = kwargs.pop("clean_up_tokenization_spaces", False)
        self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output = kwargs.pop(
            "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output", False)
        self.split_special_tokens = kwargs.pop("split_special_tokens", False)
        chat_template = kwargs.pop("chat_template", None)
        if isinstance(chat_template, (list, tuple)):
            chat_template = {item["name"]: item["template"] for item in chat_template}
        self.chat_template = chat_template
        self._pad_token_type_id = 0
        self._add_bos_token = kwargs.get("add_bos_token", False)
        self._add_eos_token = kwargs.get("add_eos_token", False)
        for name in self.options:
            if name in kwargs:
                object.__setattr__(self, name, kwargs[name])
        self._warned = set()

    def _set_special_tokens(self, kwargs: dict):
        named = dict(kwargs.pop("model_specific_special_tokens", None) or {})
        for key in list(kwargs):
            value = kwargs[key]
            if key in SPECIAL_TOKENS_ATTRIBUTES:
                kwargs.pop(key)
                if value is not None and not isinstance(value, (str, AddedToken)):
                    raise TokenizerError(f"{key} must be a str or an AddedToken, not {type(value).__name__}.")
                self._special_tokens_map[key] = value
            elif key == "extra_special_tokens":
                kwargs.pop(key)
                if isinstance(value, dict):
                    named.update(value)
                elif isinstance(value, (list, tuple)):
                    self._extra_special_tokens = list(value)
                elif value is not None:
                    raise TokenizerError("extra_special_tokens must be a list of tokens or a dict name -> token.")
            elif key.endswith("_token") and isinstance(value, (str, AddedToken)):
                named[key] = kwargs.pop(key)
        if named:
            self.SPECIAL_TOKENS_ATTRIBUTES = SPECIAL_TOKENS_ATTRIBUTES + [k for k in named
                                                                          if k not in SPECIAL_TOKENS_ATTRIBUTES]
            self._special_tokens_map.update(named)

    def _register_added_tokens(self, added_tokens_decoder: dict, from_files: bool):
        """Add to the engine the added tokens of the checkpoint and every special token it does not know yet.
        From a checkpoint's files, the named special tokens are always special (transformers re-adds them so)."""
        backend = self._tokenizer
        present = backend.get_added_tokens_decoder()
        known = {repr(token) for token in present.values()}
        to_add = [token for _, token in sorted(added_tokens_decoder.items(), key=lambda item: int(item[0]))
                  if repr(token) not in known]
        if from_files:
            named = {str(token) for token in self._special_tokens_map.values() if token is not None}
            queued = {str(token) for token in to_add}
            to_add += [AddedToken(**{**token.__getstate__(), "special": True}) for _, token in sorted(present.items())
                       if not token.special and token.content in named and token.content not in queued]
        names = {token.content for token in present.values()} | {str(token) for token in to_add}
        for token in [*self._special_tokens_map.values(), *self._extra_special_tokens]:
            if token is not None and str(token) not in names:
                to_add.append(token)
                names.add(str(token))
        if not to_add:
            return
        named = {str(token) for token in self._special_tokens_map.values() if token is not None}
        tokens = []
        for token in to_add:
            if isinstance(token, str):
                token = AddedToken(token, special=True)
            elif not token.special and str(token) in named:
                token = copy.deepcopy(token)
                token.special = True  # the engine then also stops normalizing it, unless that was asked for
            tokens.append(token)
        backend.add_tokens(tokens)

    def _finish_post_processor(self, explicit_bos_eos: bool):
        backend = self._tokenizer
        if backend.post_processor is None and not self.template_overrides_file:
            backend.post_processor = self._family_template()
        if explicit_bos_eos or backend.post_processor is None:
            self.update_post_processor()
        if self.template_overrides_file:
            family = self._family_template()
            if family is not None:
                backend.post_processor = family

    def update_post_processor(self):
        """Rebuild the post-processor from `add_bos_token` / `add_eos_token` and the bos/eos tokens."""
        bos, eos = self.bos_token, self.eos_token
        add_bos = self._add_bos_token and bos is not None
        add_eos = self._add_eos_token and eos is not None
        self._add_bos_token, self._add_eos_token = add_bos, add_eos
        single = f"{bos + ':0 ' if add_bos else ''}$A:0{' ' + eos + ':0' if add_eos else ''}"
        pair = f"{single}{' ' + bos + ':1' if add_bos else ''} $B:1{' ' + eos + ':1' if add_eos else ''}"
        specials = ([(bos, self.bos_token_id)] if add_bos else []) + ([(eos, self.eos_token_id)] if add_eos else [])
        self._tokenizer.post_processor = templates.template(single, pair, specials)

    @property
    def add_bos_token(self) -> bool:
        return self._add_bos_token

    @add_bos_token.setter
    def add_bos_token(self, value: bool):
        self._add_bos_token = value
        self.update_post_processor()

    @property
    def add_eos_token(self) -> bool:
        return self._add_eos_token

    @add_eos_token.setter
    def add_eos_token(self, value: bool):
        self._add_eos_token = value
        self.update_post_processor()

    # ---- loading and saving ----
    @classmethod
    def saved_class_name(cls) -> str:
        """The `tokenizer_class` written to tokenizer_config.json (a name transformers resolves)."""
        return "PreTrainedTokenizerFast"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *init_inputs, **kwargs):
        """Load from a folder, a hub repo id (cache_dir, revision, local_files_only, token, subfolder) or a
        tokenizer.json path: tokenizer.json (or the legacy vocabulary files), tokenizer_config.json,
        special_tokens_map.json, added_tokens.json and chat templates. `gguf_file=` rebuilds the tokenizer stored
        in that GGUF file of the folder or repo instead."""
        from .files import load_init_kwargs, reading_errors

        if kwargs.get("gguf_file"):
            from .gguf import load_gguf_tokenizer

            return load_gguf_tokenizer(pretrained_model_name_or_path, kwargs.pop("gguf_file"), cls, **kwargs)
        init_kwargs = load_init_kwargs(cls, pretrained_model_name_or_path, kwargs)
        with reading_errors(pretrained_model_name_or_path):
            return cls(*init_inputs, **init_kwargs)

    def save_pretrained(self, save_directory, legacy_format=None, filename_prefix=None, push_to_hub=False,
                        **kwargs) -> tuple[str, ...]:
        """Write tokenizer_config.json, the chat templates and tokenizer.json to a folder that both leanformers and
        transformers load; returns their paths, in transformers' order."""
        from .files import save_tokenizer

        if push_to_hub:
            raise TokenizerError("push_to_hub is not supported: save the folder, then upload it with "
                                 "`huggingface_hub.upload_folder`.")
        return save_tokenizer(self, save_directory, filename_prefix=filename_prefix)

    # ---- special tokens ----
    def __getattr__(self, key):
        specials = self.__dict__.get("_special_tokens_map")
        if key.startswith("__") or specials is None:
            raise AttributeError(key)
        base = _strip_id(key)
        if base in specials:
            value = specials[base]
            if value is None:
                return None
            return self.convert_tokens_to_ids(str(value)) if key != base else str(value)
        if base in _EXTRA:
            tokens = [str(token) for token in self.__dict__.get("_extra_special_tokens", [])]
            return self.convert_tokens_to_ids(tokens) if key != base else tokens
        raise AttributeError(f"{type(self).__name__} has no attribute '{key}'")

    def __setattr__(self, key, value):
        specials = self.__dict__.get("_special_tokens_map")
        base = _strip_id(key)
        if specials is not None and (base in specials or base in SPECIAL_TOKENS_ATTRIBUTES):
            if key != base and value is not None:
                value = self.convert_ids_to_tokens(value)
            if value is not None and not isinstance(value, (str, AddedToken)):
                raise TokenizerError(f"{base} must be a str or an AddedToken, not {type(value).__name__}.")
            specials[base] = value
            return
        if specials is not None and base in _EXTRA:
            if value is not None and not isinstance(value, (list, tuple)):
                raise TokenizerError(f"{base} must be a list of tokens, not {type(value).__name__}.")
            if key != base and value is not None:
                value = [self.convert_ids_to_tokens(item) for item in value]
            self._extra_special_tokens = list(value or [])
            return
        object.__setattr__(self, key, value)

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Named special tokens that are set, as strings."""
        return {name: str(self._special_tokens_map[name]) for name in self.SPECIAL_TOKENS_ATTRIBUTES
                if self._special_tokens_map.get(name) is not None}

    @property
    def all_special_tokens(self) -> list[str]:
        """Named then extra special tokens, as unique strings."""
        tokens = [self._special_tokens_map.get(name) for name in self.SPECIAL_TOKENS_ATTRIBUTES]
        return list(dict.fromkeys(str(token) for token in [*tokens, *self._extra_special_tokens] if token is not None))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def pad_token_type_id(self) -> int:
        return self._pad_token_type_id

    def add_special_tokens(self, special_tokens_dict: dict, replace_extra_special_tokens: bool = True) -> int:
        """Set named special tokens (bos_token, ..., extra_special_tokens / additional_special_tokens) and add the
        new ones to the vocabulary; returns how many tokens were added."""
        if not special_tokens_dict:
            return 0
        special_tokens_dict = dict(special_tokens_dict)
        if "additional_special_tokens" in special_tokens_dict and not special_tokens_dict.get("extra_special_tokens"):
            special_tokens_dict["extra_special_tokens"] = special_tokens_dict.pop("additional_special_tokens")
        tokens = []
        for key, value in special_tokens_dict.items():
            if key == "extra_special_tokens":
                if not isinstance(value, (list, tuple)) or not all(isinstance(t, (str, AddedToken)) for t in value):
                    raise TokenizerError(f"extra_special_tokens must be a list of str or AddedToken, got {value!r}.")
                new = [AddedToken(t, normalized=False, special=True) if isinstance(t, str) else t for t in value
                       if replace_extra_special_tokens or str(t) not in self.extra_special_tokens]
                if replace_extra_special_tokens and new:
                    self._extra_special_tokens = list(new)
                else:
                    self._extra_special_tokens.extend(new)
                tokens.extend(new)
            elif key in self.SPECIAL_TOKENS_ATTRIBUTES:
                if not isinstance(value, (str, AddedToken)):
                    raise TokenizerError(f"{key} must be a str or an AddedToken, not {type(value).__name__}.")
                if isinstance(value, str):
                    value = AddedToken(value, normalized=False, special=True)
                setattr(self, key, value)
                tokens.append(value)
            else:
                valid = ", ".join([*self.SPECIAL_TOKENS_ATTRIBUTES, "extra_special_tokens"])
                raise TokenizerError(f"{key!r} is not a special token name: use one of {valid}.")
        return self.add_tokens(tokens, special_tokens=True)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) not yet in the vocabulary at its end; returns how many were added."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        if special_tokens:
            return self._tokenizer.add_special_tokens(list(new_tokens))
        return self._tokenizer.add_tokens(list(new_tokens))

    # ---- vocabulary ----
    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The Rust `tokenizers.Tokenizer` doing the work."""
        return self._tokenizer

    @property
    def decoder(self):
        return self._tokenizer.decoder

    @property
    def is_fast(self) -> bool:
        return True

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def __bool__(self) -> bool:
        return True

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return self._tokenizer.get_added_tokens_decoder()

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        return {token.content: index for index, token in sorted(self.added_tokens_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        return self.added_tokens_encoder

    def convert_tokens_to_ids(self, tokens):
        """Token string(s) -> id(s); unknown tokens give unk_token_id."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            index = self._tokenizer.token_to_id(tokens)
            unknown = self.__dict__.get("_special_tokens_map", {}).get("unk_token")
            # an unk_token missing from the vocabulary (a damaged special_tokens_map.json) has no id itself
            return self.unk_token_id if index is None and tokens != str(unknown) else index
        return [self.convert_tokens_to_ids(token) for token in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id(s) -> token string(s)."""
        ids = _to_py(ids)
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(index)) for index in ids if int(index) not in skip]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self._tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """Ids of one sequence or a pair with the special tokens of the post-processor around them."""
        items = templates.layout(self._tokenizer.post_processor, token_ids_1 is not None)
        return templates.expand(items, list(token_ids_0), token_ids_1, "ids")

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """Token type ids of `build_inputs_with_special_tokens(token_ids_0, token_ids_1)`."""
        items = templates.layout(self._tokenizer.post_processor, token_ids_1 is not None)
        return templates.expand(items, list(token_ids_0), token_ids_1, "types")

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 for special tokens, 0 for sequence tokens, for ids with (already_has_special_tokens=True) or without
        the special tokens of the post-processor."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise TokenizerError("token_ids_1 must be None when already_has_special_tokens=True: the ids "
                                     "already hold both sequences.")
            special = set(self.all_special_ids)
            return [1 if int(index) in special else 0 for index in token_ids_0]
        items = templates.layout(self._tokenizer.post_processor, token_ids_1 is not None)
        return templates.expand(items, list(token_ids_0), token_ids_1, "special")

    def __repr__(self) -> str:
        added = "".join(f"\n\t{index}: {token!r}," for index, token in self.added_tokens_decoder.items())
        return (f"{type(self).__name__}(name_or_path='{self.name_or_path}', vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, padding_side='{self.padding_side}', "
                f"truncation_side='{self.truncation_side}', special_tokens={self.special_tokens_map}, "
                f"added_tokens_decoder={{{added}{chr(10) if added else ''}}})")

    # ---- chat templates ----
    def apply_chat_template(self, conversation, **kwargs):
        """Render a conversation with the tokenizer's chat template and (by default) tokenize it."""
        from .chat import apply_chat_template

        return apply_chat_template(self, conversation, **kwargs)

    def get_chat_template(self, chat_template: str | None = None, tools=None) -> str:
        """The chat template source a call would use."""
        from .chat import get_chat_template

        return get_chat_template(self, chat_template, tools)

    # ---- decoding ----
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs):
        """Ids -> text (a batch of id lists gives a list of texts)."""
        if isinstance(token_ids, dict):
            token_ids = token_ids["input_ids"]
        token_ids = _to_py(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if token_ids and isinstance(token_ids[0], (list, tuple)):
            return self.batch_decode(token_ids, skip_special_tokens, clean_up_tokenization_spaces)
        text = self._tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)
        return self._clean(text, clean_up_tokenization_spaces)

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None, **kwargs) -> list[str]:
        """A batch of id lists -> list of texts."""
        sequences = _to_py(sequences)
        if len(sequences) == 0:
            return []
        if not isinstance(sequences[0], (list, tuple)):
            return [self.decode(sequences, skip_special_tokens, clean_up_tokenization_spaces)]
        texts = self._tokenizer.decode_batch([list(seq) for seq in sequences], skip_special_tokens=skip_special_tokens)
        return [self._clean(text, clean_up_tokenization_spaces) for text in texts]

    def _clean(self, text: str, clean_up) -> str:
        clean_up = self.clean_up_tokenization_spaces if clean_up is None else clean_up
        if not clean_up:
            return text
        # the clean-up targets WordPiece output; on byte-level BPE it would delete real spaces
        if (type(self._tokenizer.model).__name__ == "BPE"
                and not self.clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output):
            return text
        return self.clean_up_tokenization(text)

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """Remove the spaces a WordPiece decode leaves before punctuation and contractions."""
        for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                              (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            text = text.replace(before, after)
        return text


PreTrainedTokenizerBase = PreTrainedTokenizerFast
