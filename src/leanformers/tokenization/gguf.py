"""The tokenizer of a GGUF file, rebuilt from its metadata as transformers rebuilds it.

A GGUF file carries no `tokenizer.json`: llama.cpp stores the vocabulary (`tokenizer.ggml.tokens`), the merges or the
SentencePiece scores, the token types, the special token ids, the BOS/EOS flags and the chat template as metadata.
Two kinds of vocabulary are rebuilt (`tokenizer.ggml.model`):
- "gpt2": byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM), split by the pattern `tokenizer.ggml.pre` names;
- "llama": SentencePiece vocabularies (Llama 2, Mistral, Phi-3) as a BPE with byte fallback (`<0x0A>` tokens), its
  merges taken from the file or derived from the token scores, text split on "▁" (Metaspace) like LlamaTokenizer.
Control tokens become special added tokens and user-defined ones plain added tokens, so both are matched whole.
"""

from __future__ import annotations

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
)
from tokenizers.models import BPE

from ..errors import TokenizerError

# token types of `tokenizer.ggml.token_type`
_CONTROL, _USER_DEFINED = 3, 4
_SPIECE_UNDERLINE = "\u2581"
# the special tokens transformers' intermediate tokenizer of each vocabulary kind registers by default (in this
# order): a file without them gets them appended after its vocabulary, as transformers does
_DEFAULT_SPECIALS = {"gpt2": ("<|endoftext|>",), "llama": ("<s>", "</s>", "<unk>")}
# architectures whose SentencePiece files transformers rebuilds with a tokenizer class leanformers does not have
_OTHER_SENTENCEPIECE = ("gemma", "gemma2", "gemma3")
# AutoTokenizer's class per model type (transformers' tokenizer mapping); other types get PreTrainedTokenizerFast
_AUTO_CLASSES = {"gpt2": "GPT2TokenizerFast", "qwen2": "Qwen2TokenizerFast"}

# Pre-tokenizer split patterns of the `tokenizer.ggml.pre` names whose text splitting differs from the default; the
# patterns are those of the original tokenizer.json files of these model families.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN35_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_TEKKEN_SPLIT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
                 r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
                 r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
_GPT4O_SPLIT = (rf"[^\r\n\p{{L}}\p{{N}}]?[\p{{Lu}}\p{{Lt}}\p{{Lm}}\p{{Lo}}\p{{M}}]*[\p{{Ll}}\p{{Lm}}\p{{Lo}}\p{{M}}]+"
                rf"{_CONTRACTION}"
                rf"|[^\r\n\p{{L}}\p{{N}}]?[\p{{Lu}}\p{{Lt}}\p{{Lm}}\p{{Lo}}\p{{M}}]+[\p{{Ll}}\p{{Lm}}\p{{Lo}}\p{{M}}]*"
                rf"{_CONTRACTION}"
                r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLITS = {
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
                     "jina-v5-nano", "dbrx", "smaug-bpe"), _LLAMA3_SPLIT),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez"), _QWEN2_SPLIT),
    **dict.fromkeys(("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"), _GPT4O_SPLIT),
    "qwen35": _QWEN35_SPLIT,
    "tekken": _TEKKEN_SPLIT,
}


# ---------------------------------------------------------------------------------------------- byte-level BPE
def _byte_alphabet() -> dict[int, str]:
    """The printable stand-in character of each byte in byte-level BPE vocabularies: printable Latin-1 bytes stand
    for themselves, the others take the code points from 256 upwards, in byte order."""
    kept = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    spelling, extra = {}, 0
    for byte in range(256):
        if byte in kept:
            spelling[byte] = chr(byte)
        else:
            spelling[byte] = chr(256 + extra)
            extra += 1
    return spelling


def _file_merges(metadata: dict) -> list[tuple[str, str]] | None:
    merges = metadata.get("tokenizer.ggml.merges")
    return None if merges is None else [tuple(merge.split(" ", 1)) for merge in merges]


def byte_level_backend(metadata: dict) -> Tokenizer:
    """The byte-level BPE engine (GPT-2 pre-tokenizer and decoder) of a "gpt2" vocabulary."""
    spelling = _byte_alphabet()
    alphabet = set(spelling.values())
    # tokens outside the byte alphabet (raw text in some files) are spelled in it, as the merges are
    vocab = {(token if set(token) <= alphabet else "".join(spelling[b] for b in token.encode("utf-8"))): index
             for index, token in enumerate(metadata["tokenizer.ggml.tokens"])}
    backend = Tokenizer(BPE(vocab, _file_merges(metadata) or [], continuing_subword_prefix="",
                            end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return backend


# ---------------------------------------------------------------------------------------------- SentencePiece
def merges_from_scores(tokens: list[str], scores: list[float]) -> list[tuple[str, str]]:
    """The BPE merges a SentencePiece vocabulary implies: every split of a token into two tokens of the vocabulary,
    best score first (then shorter left, shorter right; ties keep vocabulary order), as transformers derives them."""
    vocab = {token: index for index, token in enumerate(tokens)}
    found = []
    for token, score in dict(zip(tokens, scores)).items():
        pairs = [(token[:cut], token[cut:]) for cut in range(1, len(token))
                 if token[:cut] in vocab and token[cut:] in vocab]
        pairs.sort(key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
        found.extend((left, right, score) for left, right in pairs)
    # a stable sort: equal keys stay in the order found, also with reverse=True
    found.sort(key=lambda merge: (merge[2], len(merge[0]), len(merge[1])), reverse=True)
    return [(left, right) for left, right, _ in found]


def sentencepiece_backend(metadata: dict, architecture: str) -> Tokenizer:
    """The engine of a "llama" (SentencePiece) vocabulary: BPE with byte fallback, "▁" for spaces, as
    LlamaTokenizer builds it (Phi-3 prepends "▁" in a normalizer instead of the pre-tokenizer)."""
    tokens = metadata["tokenizer.ggml.tokens"]
    merges = _file_merges(metadata)
    if merges is None:
        scores = metadata.get("tokenizer.ggml.scores")
        if scores is None or len(scores) != len(tokens):
            raise TokenizerError("The SentencePiece vocabulary of this GGUF file has neither merges nor one score per "
                                 "token (tokenizer.ggml.scores), so its merges cannot be derived. Convert the model "
                                 "again with llama.cpp, or load the tokenizer from the original checkpoint.")
        merges = merges_from_scores(tokens, scores)
    vocab = {token: index for index, token in enumerate(tokens)}
    backend = Tokenizer(BPE(vocab, merges, fuse_unk=True, byte_fallback=True, dropout=None))
    if architecture == "phi3":  # "  hi" -> "▁▁▁hi": every space becomes "▁" after one is prepended
        backend.normalizer = normalizers.Sequence([normalizers.Prepend(_SPIECE_UNDERLINE),
                                                   normalizers.Replace(" ", _SPIECE_UNDERLINE)])
    else:
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_SPIECE_UNDERLINE, prepend_scheme="first",
                                                         split=False)
    backend.decoder = decoders.Sequence([decoders.Replace(_SPIECE_UNDERLINE, " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(content=" ", left=1)])
    return backend


# ---------------------------------------------------------------------------------------------- both kinds
def _add_marked_tokens(backend: Tokenizer, metadata: dict, kind: str):
    """Register the default special tokens of the kind, then the control tokens (special) and the user-defined
    ones (not special) of the file, so that each is matched whole in text."""
    backend.add_special_tokens([AddedToken(token, normalized=False, special=True)
                                for token in _DEFAULT_SPECIALS[kind]])
    tokens = metadata["tokenizer.ggml.tokens"]
    types = metadata.get("tokenizer.ggml.token_type") or []
    # in a byte-level vocabulary every real token is spelled in the byte alphabet: a "control" token spelled
    # otherwise is a mislabelled ordinary one and is left to the model
    alphabet = set(_byte_alphabet().values()) if kind == "gpt2" else None
    control = [AddedToken(token, normalized=False, special=True) for token, token_type in zip(tokens, types)
               if token_type == _CONTROL and (alphabet is None or set(token) <= alphabet)]
    backend.add_special_tokens(control)
    vocab = backend.get_vocab()
    backend.add_tokens([AddedToken(token, normalized=False, special=False) for token, token_type in zip(tokens, types)
                        if token_type == _USER_DEFINED and token in vocab])


def gguf_backend(metadata: dict, architecture: str, path: str = "the GGUF file") -> Tokenizer:
    """The `tokenizers.Tokenizer` that the tokenizer metadata of a GGUF file describes."""
    kind = metadata.get("tokenizer.ggml.model")
    if "tokenizer.ggml.tokens" not in metadata:
        raise TokenizerError(f"{path} stores no tokenizer (no tokenizer.ggml.tokens); load the tokenizer from the "
                             f"original checkpoint.")
    if kind == "gpt2":
        backend = byte_level_backend(metadata)
    elif kind == "llama" and architecture not in _OTHER_SENTENCEPIECE:
        backend = sentencepiece_backend(metadata, architecture)
    else:
        raise TokenizerError(f"{path} stores a '{kind}' tokenizer of a '{architecture}' model; tokenizers are rebuilt "
                             f"from GGUF files for byte-level BPE ('gpt2': GPT-2, Llama 3, Qwen2, SmolLM) and "
                             f"SentencePiece BPE ('llama': Llama 2, Mistral, Phi-3). Load the tokenizer from the "
                             f"original checkpoint (tokenizer.json or tokenizer.model) instead.")
    _add_marked_tokens(backend, metadata, kind)
    split = _SPLITS.get(metadata.get("tokenizer.ggml.pre"))
    if split is not None:  # the text is split the way this vocabulary's merges were learned
        backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                         pre_tokenizers.ByteLevel(add_prefix_space=False,
                                                                                  use_regex=False)])
    return backend


def gguf_tokenizer_kwargs(metadata: dict) -> dict:
    """Special tokens, BOS/EOS flags and chat template of GGUF metadata, as tokenizer keyword arguments."""
    tokens = metadata["tokenizer.ggml.tokens"]
    kwargs = {}
    for name, key in (("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"),
                      ("pad_token", "padding_token_id")):
        index = metadata.get(f"tokenizer.ggml.{key}")
        kwargs[name] = tokens[index] if index is not None and 0 <= index < len(tokens) else None
    for flag in ("add_bos_token", "add_eos_token"):
        if f"tokenizer.ggml.{flag}" in metadata:
            kwargs[flag] = bool(metadata[f"tokenizer.ggml.{flag}"])
    if metadata.get("tokenizer.ggml.model") == "llama":
        # llama.cpp adds BOS to a SentencePiece vocabulary whose file does not say otherwise (older files)
        kwargs.setdefault("add_bos_token", True)
    if metadata.get("tokenizer.chat_template"):
        kwargs["chat_template"] = metadata["tokenizer.chat_template"]
    return kwargs


def load_gguf_tokenizer(path_or_repo, gguf_file, tokenizer_class=None, **kwargs):
    """The tokenizer stored in a GGUF file of a folder or hub repo. `tokenizer_class` None picks the class as
    AutoTokenizer does (from the model type); keyword arguments override the file's settings (padding_side=...)."""
    from .. import tokenization
    from ..gguf import damaged_gguf, gguf_model_type, read_gguf, resolve_gguf
    from ..hub import HUB_KWARGS

    hub_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in HUB_KWARGS}
    kwargs.pop("config", None)
    file = read_gguf(resolve_gguf(path_or_repo, gguf_file, hub_kwargs))
    with damaged_gguf(file.path, "tokenizer metadata", TokenizerError):
        backend = gguf_backend(file.metadata, file.architecture, file.path)
        if tokenizer_class is None:
            name = _AUTO_CLASSES.get(gguf_model_type(file), "PreTrainedTokenizerFast")
            tokenizer_class = tokenization.tokenizer_class(name)
        init = {**gguf_tokenizer_kwargs(file.metadata), "name_or_path": str(path_or_repo), **kwargs}
        return tokenizer_class(tokenizer_object=backend, **init)
