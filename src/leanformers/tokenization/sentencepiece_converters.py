"""SentencePiece `.model` files -> `tokenizers.Tokenizer`, dressed as transformers 5 dresses each model family.

A SentencePiece model file is a protobuf: pieces with scores and types, trainer settings (algorithm, unknown id,
byte fallback) and normalizer settings (a precompiled character map, whitespace handling). Each family keeps the
pieces but reorders or extends the vocabulary (fairseq offsets, sentinel tokens, language codes) and picks its own
normalizer, pre-tokenizer and decoder. Control pieces (`<s>`, `</s>`, ...) and user-defined pieces become added
tokens, so they are matched whole in the input; the family's named special tokens and its post-processor are set
by the tokenizer classes.

Families: "t5", "albert", "xlm-roberta", "camembert", "xlnet", "llama" (and "mistral"), "pegasus", "mbart",
"mbart50", "marian" (vocabulary ids from `vocab.json`) and "sentencepiece" (no family: follows the model file's own
normalizer settings, like `SentencePieceProcessor.encode`).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import BPE, Unigram

from ..errors import ResourceNotFoundError, TokenizerError

SPIECE_UNDERLINE = "▁"
# SentencePiece piece types (sentencepiece_model.proto)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE_TYPE = 1, 2

MBART_LANGUAGES = (
    "ar_AR cs_CZ de_DE en_XX es_XX et_EE fi_FI fr_XX gu_IN hi_IN it_IT ja_XX kk_KZ ko_KR lt_LT lv_LV my_MM ne_NP "
    "nl_XX ro_RO ru_RU si_LK tr_TR vi_VN zh_CN"
).split()
MBART50_LANGUAGES = MBART_LANGUAGES + (
    "af_ZA az_AZ bn_IN fa_IR he_IL hr_HR id_ID ka_GE km_KH mk_MK ml_IN mn_MN mr_IN pl_PL ps_AF pt_XX sv_SE sw_KE "
    "ta_IN te_IN th_TH tl_XX uk_UA ur_PK xh_ZA gl_ES sl_SI"
).split()

# Prefix of Marian vocabulary entries that the source model cannot produce: no input text contains it, so the
# Unigram lattice never picks them, while their ids stay where vocab.json puts them.
MARIAN_UNREACHABLE_PREFIX = "\U0010fffe"


@dataclass
class SentencePieceModel:
    """The parts of a SentencePiece model file that conversion needs."""

    pieces: list  # (piece, score, type) in id order
    algorithm: int  # UNIGRAM or BPE_TYPE
    unk_id: int
    unk_piece: str
    byte_fallback: bool
    charsmap: bytes | None  # precompiled normalization map, None when the model has none
    add_dummy_prefix: bool
    remove_extra_whitespaces: bool
    escape_whitespaces: bool

    @property
    def scores(self) -> list:
        return [(piece, score) for piece, score, _ in self.pieces]


def load_sentencepiece_model(model_file) -> SentencePieceModel:
    """Read a SentencePiece `.model` protobuf (needs the optional `sentencepiece` package)."""
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as err:
        raise ImportError(
            "Reading a SentencePiece model (spiece.model, sentencepiece.bpe.model, tokenizer.model, *.spm) needs the "
            "`sentencepiece` package: `pip install leanformers[sentencepiece]`, or use a folder with tokenizer.json."
        ) from err
    path = os.fspath(model_file)
    if not os.path.isfile(path):
        raise ResourceNotFoundError(f"SentencePiece model not found at {path!r}: pass the path of an existing file.")
    proto = sentencepiece_model_pb2.ModelProto()
    try:
        with open(path, "rb") as handle:
            proto.ParseFromString(handle.read())
    except Exception as err:  # protobuf raises its own DecodeError type
        raise TokenizerError(f"{path!r} is not a SentencePiece model file ({err}): pass a valid .model file.") from err
    if not proto.pieces:
        raise TokenizerError(f"{path!r} holds no SentencePiece pieces: pass a trained SentencePiece model file.")
    trainer, norm = proto.trainer_spec, proto.normalizer_spec
    return SentencePieceModel(
        pieces=[(p.piece, p.score, p.type) for p in proto.pieces],
        algorithm=trainer.model_type,
        unk_id=trainer.unk_id,
        unk_piece=trainer.unk_piece or "<unk>",
        byte_fallback=trainer.byte_fallback,
        charsmap=bytes(norm.precompiled_charsmap) or None,
        add_dummy_prefix=norm.add_dummy_prefix,
        remove_extra_whitespaces=norm.remove_extra_whitespaces,
        escape_whitespaces=norm.escape_whitespaces,
    )


# ---------------------------------------------------------------------------------------------------------- parts
def _precompiled(charsmap: bytes | None) -> list:
    return [normalizers.Precompiled(charsmap)] if charsmap else []


def _sequence(parts: list):
    return normalizers.Sequence(parts) if parts else None


def _metaspace_words(prepend_scheme: str, split: bool = True):
    """Split on whitespace, then mark each word start with '▁' (the Unigram families' pre-tokenizer)."""
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(SPIECE_UNDERLINE, prepend_scheme, split=split)]
    )


def _quotes_accents_case(do_lower_case: bool, strip_accents: bool) -> list:
    """ALBERT/XLNet normalizers: LaTeX quotes to '"', optional NFKD accent stripping and lower-casing."""
    parts = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    if strip_accents:
        parts += [normalizers.NFKD(), normalizers.StripAccents()]
    if do_lower_case:
        parts.append(normalizers.Lowercase())
    return parts


def _assemble(model, normalizer=None, pre_tokenizer=None, decoder=None) -> Tokenizer:
    tokenizer = Tokenizer(model)
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    if decoder is not None:
        tokenizer.decoder = decoder
    return tokenizer


def _add_piece_tokens(tokenizer: Tokenizer, spm: SentencePieceModel, user_defined: bool = True) -> None:
    """Control pieces become special added tokens, user-defined pieces plain ones, both matched on the raw text."""
    kinds = (CONTROL, USER_DEFINED) if user_defined else (CONTROL,)
    tokens = [AddedToken(p, normalized=False, special=kind == CONTROL) for p, _, kind in spm.pieces if kind in kinds]
    if tokens:
        tokenizer.add_tokens(tokens)


def _rank_merges(vocab: Mapping[str, int], ranks: Mapping[str, float] | None = None) -> list:
    """BPE merges recovered from a piece vocabulary: every split of a piece into two known pieces.

    Without `ranks`, merges are ordered by the id of the merged piece (SentencePiece ids follow scores), then by the
    length of the left part; with `ranks` (piece -> score, the pieces allowed to merge) by descending score, then id.
    """
    found = []
    pool = vocab if ranks is None else ranks
    for token, token_id in vocab.items():
        if token not in pool:
            continue
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in pool and right in pool:
                found.append(((token_id, cut) if ranks is None else (-ranks[token], token_id, cut), left, right))
    found.sort(key=lambda item: item[0])
    return [(left, right) for _, left, right in found]


# ----------------------------------------------------------------- vocabularies: model file -> family vocabulary
# Each returns (vocab, merges): a list of (token, score) and None for Unigram families, a token->id dict and the
# merges for BPE ones.
def _pieces_vocab(spm, **_):
    return spm.scores, None


def _t5_vocab(spm, extra_ids: int = 100, **_):
    return spm.scores + [(f"<extra_id_{i}>", 0.0) for i in range(extra_ids - 1, -1, -1)], None


def _xlm_roberta_vocab(spm, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                       mask_token="<mask>", **_):
    # fairseq dictionary: its four specials first, then the pieces after SentencePiece's own three specials
    head = [(str(token), 0.0) for token in (bos_token, pad_token, eos_token, unk_token)]
    return head + spm.scores[3:] + [(str(mask_token), 0.0)], None


def _camembert_vocab(spm, pad_token="<pad>", unk_token="<unk>", mask_token="<mask>", **_):
    # CamemBERT keeps placeholders where fairseq's specials were, then every piece after SentencePiece's <unk>
    head = [("<s>NOTUSED", 0.0), (str(pad_token), 0.0), ("</s>NOTUSED", 0.0), (str(unk_token), 0.0),
            ("<unk>NOTUSED", -100.0)]
    return head + spm.scores[1:] + [(str(mask_token), 0.0)], None


def _mbart_vocab(spm, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>", mask_token="<mask>",
                 languages=None, **_):
    head = [(str(token), 0.0) for token in (bos_token, pad_token, eos_token, unk_token)]
    codes = [(code, 0.0) for code in (MBART_LANGUAGES if languages is None else languages)]
    return head + spm.scores[3:] + codes + [(str(mask_token), 0.0)], None


def _mbart50_vocab(spm, cls_token="<s>", **options):
    options.pop("bos_token", None)
    return _mbart_vocab(spm, bos_token=cls_token, **{"languages": MBART50_LANGUAGES, **options})


def _pegasus_vocab(spm, pad_token="<pad>", eos_token="</s>", mask_token="<mask_1>", mask_token_sent="<mask_2>",
                   offset: int = 103, **_):
    vocab = [(str(pad_token), 0.0), (str(eos_token), 0.0)]
    if mask_token is not None and str(mask_token) != "None":
        vocab.append((str(mask_token), 0.0))
    if mask_token_sent is not None and str(mask_token_sent) not in ("None", str(mask_token)):
        vocab.append((str(mask_token_sent), 0.0))
    return vocab + [(f"<unk_{i}>", -100.0) for i in range(2, offset)] + spm.scores[2:], None


def _llama_vocab(spm, **_):
    vocab = {piece: i for i, (piece, _, _) in enumerate(spm.pieces)}
    return vocab, _rank_merges(vocab)


# ---------------------------------------------------------------------- dressing: family vocabulary -> Tokenizer
def _t5_dress(vocab, merges, charsmap, **_):
    # transformers 5 fixes the unknown id at 2 (where T5's own model files keep <unk>)
    return _assemble(
        Unigram(vocab, unk_id=2, byte_fallback=False),
        _sequence(_precompiled(charsmap)),
        _metaspace_words("always"),
        decoders.Metaspace(SPIECE_UNDERLINE, "always", split=True),
    )


def _albert_dress(vocab, merges, charsmap, do_lower_case: bool = True, keep_accents: bool = False,
                  add_prefix_space: bool = True, **_):
    scheme = "always" if add_prefix_space else "never"
    # transformers 5 fixes the unknown id at 1 (where ALBERT's own model files keep <unk>)
    return _assemble(
        Unigram(vocab, unk_id=1, byte_fallback=False),
        _sequence(_quotes_accents_case(do_lower_case, not keep_accents) + _precompiled(charsmap)),
        _metaspace_words(scheme),
        decoders.Metaspace(SPIECE_UNDERLINE, scheme),
    )


def _xlnet_dress(vocab, merges, charsmap, do_lower_case: bool = False, unk_id: int = 0, **_):
    # XLNet strips accents whatever `keep_accents` says, as transformers 5 does
    return _assemble(
        Unigram(vocab, unk_id=unk_id, byte_fallback=False),
        _sequence(_quotes_accents_case(do_lower_case, True) + _precompiled(charsmap)),
        _metaspace_words("always"),
        decoders.Metaspace(SPIECE_UNDERLINE, "always"),
    )


def _fairseq_dress(vocab, charsmap, unk_id: int, add_prefix_space: bool):
    scheme = "always" if add_prefix_space else "never"
    return _assemble(
        Unigram(vocab, unk_id=unk_id, byte_fallback=False),
        _sequence(_precompiled(charsmap)),
        _metaspace_words(scheme),
        decoders.Metaspace(SPIECE_UNDERLINE, scheme),
    )


def _xlm_roberta_dress(vocab, merges, charsmap, add_prefix_space: bool = True, **_):
    return _fairseq_dress(vocab, charsmap, 3, add_prefix_space)


def _camembert_dress(vocab, merges, charsmap, unk_token="<unk>", add_prefix_space: bool = True, **_):
    unk_id = next((i for i, (token, _) in enumerate(vocab) if token == str(unk_token)), 0)
    return _fairseq_dress(vocab, charsmap, unk_id, add_prefix_space)


def _mbart_dress(vocab, merges, charsmap, **_):
    # transformers 5 gives mBART no normalizer: the model's precompiled map is not applied
    return _assemble(
        Unigram(vocab, unk_id=3, byte_fallback=False),
        None,
        _metaspace_words("always"),
        decoders.Metaspace(SPIECE_UNDERLINE, "always", split=True),
    )


def _mbart50_dress(vocab, merges, charsmap, **_):
    return _assemble(
        Unigram(vocab, unk_id=3, byte_fallback=False),
        normalizers.Sequence(_precompiled(charsmap) + [normalizers.Replace(Regex(" {2,}"), " ")]),
        pre_tokenizers.Metaspace(SPIECE_UNDERLINE, "always", split=True),
        decoders.Metaspace(SPIECE_UNDERLINE, "always", split=True),
    )


def _pegasus_dress(vocab, merges, charsmap, unk_token="<unk>", **_):
    unk_id = next((i for i, item in enumerate(vocab) if i >= 1 and tuple(item) == (str(unk_token), 0.0)), None)
    if unk_id is None:
        raise TokenizerError(
            f"The Pegasus vocabulary has no {str(unk_token)!r} entry with score 0 after the pad token: Pegasus model "
            "files keep <pad>, </s>, <unk> as their first pieces; pass `unk_token=` to name the unknown piece."
        )
    front = _precompiled(charsmap) or [normalizers.Replace(Regex(r"\n"), " ")]
    return _assemble(
        Unigram(vocab, unk_id=unk_id, byte_fallback=False),
        normalizers.Sequence(front + [normalizers.Replace(Regex(" {2,}"), " ")]),
        pre_tokenizers.Metaspace(SPIECE_UNDERLINE, "always", split=True),
        decoders.Metaspace(SPIECE_UNDERLINE, "always", split=True),
    )


def _llama_dress(vocab, merges, charsmap, add_prefix_space: bool | None = None, legacy: bool = False, **_):
    """Llama / Mistral: BPE with byte fallback, no normalizer, '▁' prepended to the first word only."""
    add_prefix_space = True if add_prefix_space is None else add_prefix_space
    scheme = ("always" if legacy else "first") if add_prefix_space else "never"
    steps = [decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_prefix_space:
        steps.append(decoders.Strip(content=" ", left=1))
    # transformers 5 builds this BPE without an unknown token: what no piece or byte covers is dropped
    return _assemble(
        BPE(vocab, merges, fuse_unk=True, byte_fallback=True, dropout=None),
        None,
        pre_tokenizers.Metaspace(SPIECE_UNDERLINE, scheme, split=False),
        decoders.Sequence(steps),
    )


_FAMILIES = {
    "t5": (_t5_vocab, _t5_dress),
    "albert": (_pieces_vocab, _albert_dress),
    "xlnet": (_pieces_vocab, _xlnet_dress),
    "xlm-roberta": (_xlm_roberta_vocab, _xlm_roberta_dress),
    "camembert": (_camembert_vocab, _camembert_dress),
    "mbart": (_mbart_vocab, _mbart_dress),
    "mbart50": (_mbart50_vocab, _mbart50_dress),
    "pegasus": (_pegasus_vocab, _pegasus_dress),
    "llama": (_llama_vocab, _llama_dress),
    "mistral": (_llama_vocab, _llama_dress),
}
_BPE_FAMILIES = frozenset({"llama", "mistral"})


# ------------------------------------------------------------------------- no family: the model file's own rules
def _faithful(spm: SentencePieceModel, legacy: bool = True, vocab=None, **_):
    """Follow the model file's own settings, so encoding matches `SentencePieceProcessor.encode`.

    `vocab` (optional) replaces the piece list: (token, score) pairs for Unigram models, a token->id dict for BPE
    models.
    """
    user_defined = [piece for piece, _, kind in spm.pieces if kind == USER_DEFINED]
    if spm.algorithm == BPE_TYPE:
        vocab = vocab if vocab is not None else {piece: i for i, (piece, _, _) in enumerate(spm.pieces)}
        # only normal pieces take part in merges, ranked by their score
        ranks = {piece: score for piece, score, kind in spm.pieces if kind == NORMAL and piece in vocab}
        model = BPE(vocab, _rank_merges(vocab, ranks), unk_token=spm.unk_piece, fuse_unk=True,
                    byte_fallback=spm.byte_fallback, dropout=None, ignore_merges=bool(user_defined))
    else:
        model = Unigram(vocab if vocab is not None else spm.scores, unk_id=spm.unk_id, byte_fallback=spm.byte_fallback)
    return _assemble(model, _faithful_normalizer(spm, legacy), _faithful_pre_tokenizer(spm, legacy, user_defined),
                     _faithful_decoder(spm))


def _faithful_normalizer(spm: SentencePieceModel, legacy: bool):
    parts = _precompiled(spm.charsmap)
    if spm.remove_extra_whitespaces:
        # SentencePiece squeezes and trims spaces only; newlines and tabs stay
        parts += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " ")]
    if spm.escape_whitespaces:
        parts.append(normalizers.Replace(" ", SPIECE_UNDERLINE))
    if spm.add_dummy_prefix and legacy:
        # Metaspace adds no prefix before a leading '▁'; SentencePiece does, so double it first
        parts.append(normalizers.Replace(Regex(r"\A▁"), "▁▁"))
    return normalizers.Sequence(parts)


def _faithful_pre_tokenizer(spm: SentencePieceModel, legacy: bool, user_defined: list):
    parts = []
    if spm.add_dummy_prefix:
        parts.append(pre_tokenizers.Metaspace(SPIECE_UNDERLINE, "always" if legacy else "first", split=False))
    if user_defined:
        # SentencePiece emits user-defined pieces whole: cut them out (longest first) before the model runs
        pattern = "|".join(re.escape(piece) for piece in sorted(user_defined, key=len, reverse=True))
        parts.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated"))
    return pre_tokenizers.Sequence(parts) if parts else None


def _faithful_decoder(spm: SentencePieceModel):
    steps = [decoders.Replace(SPIECE_UNDERLINE, " ")]
    if spm.byte_fallback:
        steps.append(decoders.ByteFallback())
    if spm.add_dummy_prefix:
        steps += [decoders.Fuse(), decoders.Strip(content=" ", left=1)]
    elif spm.byte_fallback:
        steps.append(decoders.Fuse())
    return decoders.Sequence(steps)


def _marian(spm: SentencePieceModel, vocab=None, unk_token="<unk>", eos_token="</s>", pad_token="<pad>", **_):
    """Marian: SentencePiece segmentation by the source model, ids from the shared `vocab.json`.

    Entries of `vocab` that the source model lacks keep their ids but carry `MARIAN_UNREACHABLE_PREFIX`, so no input
    produces them (the decoder drops the prefix); the special tokens and language codes (`>>fr<<`) keep their names,
    and the codes become added tokens. Decoding trims surrounding spaces, as Marian's tokenizer does.
    """
    if vocab is None:
        raise TokenizerError("A Marian tokenizer needs its vocab.json: pass `vocab=` (a path or a token->id dict).")
    if not isinstance(vocab, Mapping):
        with open(os.fspath(vocab), encoding="utf-8") as handle:
            vocab = json.load(handle)
    if str(unk_token) not in vocab:
        raise TokenizerError(f"{str(unk_token)!r} must be in the Marian vocab.json: add it or pass `unk_token=`.")
    codes = [token for token in vocab if token.startswith(">>") and token.endswith("<<")]
    named = {str(unk_token), str(eos_token), str(pad_token), *codes}
    known = {piece: score for piece, score, _ in spm.pieces}
    floor = min(known.values())  # the lowest score keeps the unknown-piece penalty where SentencePiece has it
    by_id = {i: token for token, i in vocab.items()}
    entries = []
    for i in range(max(by_id) + 1):
        token = by_id.get(i, f"<unused_{i}>")
        if token in known or token in named:
            entries.append((token, known.get(token, floor)))
        else:
            entries.append((MARIAN_UNREACHABLE_PREFIX + token, floor))
    source = replace(spm, unk_id=vocab[str(unk_token)])
    if spm.algorithm == BPE_TYPE:
        tokenizer = _faithful(source, vocab={token: i for i, (token, _) in enumerate(entries)})
    else:
        tokenizer = _faithful(source, vocab=entries)
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace(MARIAN_UNREACHABLE_PREFIX, ""), decoders.Replace(SPIECE_UNDERLINE, " "), decoders.Fuse(),
         decoders.Replace(Regex(r"\A\s+|\s+\z"), "")]
    )
    if codes:
        tokenizer.add_tokens([AddedToken(code, normalized=False) for code in codes])
    return tokenizer


# ------------------------------------------------------------------------------------------------------ public
SENTENCEPIECE_FAMILIES = frozenset(_FAMILIES) | {"sentencepiece", "marian"}
# Families whose tokenizer class does not register the model file's control pieces as tokens
_NO_PIECE_TOKENS = frozenset({"pegasus", "marian"})


def _family_key(family: str, allowed) -> str:
    key = family.lower().replace("_", "-")
    if key not in allowed:
        raise TokenizerError(
            f"No SentencePiece conversion for the {family!r} family: use one of {', '.join(sorted(allowed))}."
        )
    return key


def sentencepiece_tokenizer(model_file, family: str, **options) -> Tokenizer:
    """Build the backend tokenizer of `family` from a SentencePiece `.model` file. No post-processor.

    `options` are the family's tokenizer_config.json settings that change the backend (all optional):
    t5: `extra_ids`; albert: `do_lower_case`, `keep_accents`, `add_prefix_space`; xlnet: `do_lower_case`,
    `unk_id`; xlm-roberta / camembert / mbart / mbart50: the special token strings, `add_prefix_space`;
    pegasus: `offset`, `mask_token`, `mask_token_sent`; llama: `add_prefix_space`, `legacy`;
    marian: `vocab` (vocab.json); sentencepiece: `legacy`.
    """
    key = _family_key(family, SENTENCEPIECE_FAMILIES)
    spm = load_sentencepiece_model(model_file)
    if key == "sentencepiece":
        tokenizer = _faithful(spm, **options)
    elif key == "marian":
        tokenizer = _marian(spm, **options)
    else:
        make_vocab, dress = _FAMILIES[key]
        vocab, merges = make_vocab(spm, **options)
        if key == "xlnet":
            options.setdefault("unk_id", spm.unk_id)
        tokenizer = dress(vocab, merges, spm.charsmap, **options)
    if key not in _NO_PIECE_TOKENS:
        # the generic path cuts user-defined pieces out in its pre-tokenizer instead
        _add_piece_tokens(tokenizer, spm, user_defined=key != "sentencepiece")
    return tokenizer


def _json_charsmap(normalizer: dict | None) -> bytes | None:
    """The precompiled SentencePiece map inside a tokenizer.json normalizer, if any."""
    if not normalizer:
        return None
    parts = normalizer.get("normalizers", []) if normalizer.get("type") == "Sequence" else [normalizer]
    for part in parts:
        if part.get("type") == "Precompiled" and part.get("precompiled_charsmap"):
            return base64.b64decode(part["precompiled_charsmap"])
    return None


def sentencepiece_family_from_json(tokenizer, family: str, **options) -> Tokenizer:
    """Rebuild a tokenizer.json of a SentencePiece family the way transformers 5's tokenizer class does.

    The vocabulary (and merges) and the precompiled normalization map come from `tokenizer` (a `Tokenizer` or the
    path of a tokenizer.json), used as they are; the model settings, normalizer, pre-tokenizer and decoder come from
    the family and `options` (see `sentencepiece_tokenizer`). Added tokens and the post-processor are not carried
    over: the tokenizer class sets them from its configuration.
    """
    key = _family_key(family, frozenset(_FAMILIES))
    if not isinstance(tokenizer, Tokenizer):
        path = os.fspath(tokenizer)
        if not os.path.isfile(path):
            raise ResourceNotFoundError(f"tokenizer.json not found at {path!r}: pass the path of an existing file.")
        tokenizer = Tokenizer.from_file(path)
    data = json.loads(tokenizer.to_str())
    model = data.get("model", {})
    if key in _BPE_FAMILIES:
        if model.get("type") != "BPE":
            raise TokenizerError(f"The {family!r} family needs a BPE tokenizer.json; this one is {model.get('type')}.")
        vocab = model["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
    else:
        if model.get("type") != "Unigram":
            raise TokenizerError(
                f"The {family!r} family needs a Unigram tokenizer.json; this one is {model.get('type')}."
            )
        vocab, merges = [tuple(item) for item in model["vocab"]], None
    _, dress = _FAMILIES[key]
    return dress(vocab, merges, _json_charsmap(data.get("normalizer")), **options)
