"""Tokenizer families: their default special tokens, options, text pipeline (normalizer, pre-tokenizer, decoder
set from the options, as transformers does), special-token template, and how to build the engine from legacy
vocabulary files (through `converters`)."""

from __future__ import annotations

import base64
import json

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, WordPiece

from ..errors import TokenizerError
from .base import PreTrainedTokenizerFast
from .templates import template

SPIECE_UNDERLINE = "\u2581"
# Qwen2's split of text into words before byte-level BPE
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
                 r"\s+(?!\S)|\s+")
# mBART's 25 language codes, in the order of its vocabulary
MBART_LANGUAGE_CODES = ("ar_AR cs_CZ de_DE en_XX es_XX et_EE fi_FI fr_XX gu_IN hi_IN it_IT ja_XX kk_KZ ko_KR lt_LT "
                        "lv_LV my_MM ne_NP nl_XX ro_RO ru_RU si_LK tr_TR vi_VN zh_CN").split()


def _precompiled_charsmap(backend: Tokenizer) -> bytes | None:
    """The SentencePiece normalization table inside the engine's normalizer, if it has one."""
    if backend.normalizer is None:
        return None
    state = json.loads(backend.normalizer.__getstate__())
    items = state.get("normalizers", []) if state.get("type") == "Sequence" else [state]
    for item in items:
        if item.get("type") == "Precompiled" and item.get("precompiled_charsmap"):
            return base64.b64decode(item["precompiled_charsmap"])
    return None


def _metaspace(prepend_scheme: str, split: bool = True):
    return (pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme=prepend_scheme, split=split),
            decoders.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme=prepend_scheme, split=split))


class _Family(PreTrainedTokenizerFast):
    """A named tokenizer family: saved under its transformers class name (without "Fast")."""

    @classmethod
    def saved_class_name(cls) -> str:
        return cls.__name__.removesuffix("Fast")

    def _token_id(self, name: str, fallback: int | None = None) -> int | None:
        index = getattr(self, f"{name}_id")
        return fallback if index is None else index


def _with_lstrip(token, special: bool = False):
    """A mask token that eats the space before it, as XLNet and CamemBERT define it."""
    return AddedToken(token, lstrip=True, rstrip=False, special=special) if isinstance(token, str) else token


# ---- WordPiece ----
class BertTokenizer(_Family):
    """BERT (WordPiece): `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` with token type ids."""

    vocab_files_names = {"vocab_file": "vocab.txt"}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    defaults = {"do_lower_case": True, "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                "cls_token": "[CLS]", "mask_token": "[MASK]", "tokenize_chinese_chars": True, "strip_accents": None}
    options = ("do_lower_case", "tokenize_chinese_chars", "strip_accents")

    def _backend_from_vocab(self, kwargs):
        vocab, unk = kwargs.get("vocab"), str(kwargs.get("unk_token"))
        if isinstance(vocab, dict):
            return Tokenizer(WordPiece(vocab, unk_token=unk))
        vocab_file = kwargs.get("vocab_file") or (vocab if isinstance(vocab, str) else None)
        if vocab_file is None:
            return None
        from .converters import wordpiece_tokenizer

        return wordpiece_tokenizer(vocab_file, do_lower_case=kwargs["do_lower_case"],
                                   strip_accents=kwargs["strip_accents"],
                                   tokenize_chinese_chars=kwargs["tokenize_chinese_chars"],
                                   never_split=kwargs.get("never_split"), unk_token=unk)

    def _configure_pipeline(self):
        backend = self._tokenizer
        backend.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=self.tokenize_chinese_chars, strip_accents=self.strip_accents,
            lowercase=self.do_lower_case)
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.decoder = decoders.WordPiece(prefix="##")

    def _family_template(self):
        cls, sep = str(self.cls_token), str(self.sep_token)
        return template(f"{cls}:0 $A:0 {sep}:0", f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                        [(cls, self._token_id("cls_token", 2)), (sep, self._token_id("sep_token", 3))])


class DistilBertTokenizer(BertTokenizer):
    """DistilBERT: BERT's tokenizer without token type ids."""

    model_input_names = ["input_ids", "attention_mask"]


class RetriBertTokenizer(DistilBertTokenizer):
    """RetriBERT: BERT's tokenizer without token type ids, saved under its own class name."""


ElectraTokenizer = BertTokenizer  # ELECTRA checkpoints use BERT's tokenizer unchanged
MobileBertTokenizer = BertTokenizer  # so do MobileBERT checkpoints


# ---- byte-level BPE ----
class GPT2Tokenizer(_Family):
    """GPT-2 (byte-level BPE): no special tokens around the text."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    defaults = {"errors": "replace", "unk_token": "<|endoftext|>", "bos_token": "<|endoftext|>",
                "eos_token": "<|endoftext|>", "pad_token": None, "add_prefix_space": False}
    options = ("add_prefix_space",)
    template_overrides_file = False

    def _backend_from_vocab(self, kwargs):
        vocab, merges = kwargs.get("vocab"), kwargs.get("merges")
        if isinstance(vocab, dict):
            pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges or []]
            return Tokenizer(BPE(vocab, pairs, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
        if not kwargs.get("vocab_file") or not kwargs.get("merges_file"):
            return None
        from .converters import byte_level_bpe_tokenizer

        return byte_level_bpe_tokenizer(kwargs["vocab_file"], kwargs["merges_file"],
                                        add_prefix_space=bool(kwargs.get("add_prefix_space")),
                                        trim_offsets=kwargs.get("trim_offsets", True))

    def _configure_pipeline(self):
        self._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=bool(self.add_prefix_space))
        self._tokenizer.decoder = decoders.ByteLevel()


class RobertaTokenizer(GPT2Tokenizer):
    """RoBERTa (byte-level BPE): `<s> A </s>` and `<s> A </s></s> B </s>`."""

    defaults = {"errors": "replace", "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "add_prefix_space": False,
                "trim_offsets": True}
    options = ("add_prefix_space", "trim_offsets")
    template_overrides_file = True

    def _family_template(self):
        return processors.RobertaProcessing((str(self.sep_token), self.sep_token_id),
                                            (str(self.cls_token), self.cls_token_id),
                                            trim_offsets=self.trim_offsets, add_prefix_space=self.add_prefix_space)


class BartTokenizer(RobertaTokenizer):
    """BART: RoBERTa's tokenizer."""


class Qwen2Tokenizer(GPT2Tokenizer):
    """Qwen2 (byte-level BPE after NFC and a word-splitting pattern): no special tokens around the text."""

    defaults = {"unk_token": "<|endoftext|>", "bos_token": None, "eos_token": "<|endoftext|>",
                "pad_token": "<|endoftext|>", "add_prefix_space": None}

    def _configure_pipeline(self):
        backend = self._tokenizer
        backend.normalizer = normalizers.NFC()
        backend.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=bool(self.add_prefix_space), use_regex=False)])
        backend.decoder = decoders.ByteLevel()

    def _finish_post_processor(self, explicit_bos_eos: bool):
        super()._finish_post_processor(explicit_bos_eos)
        # every special token is matched whole, as transformers re-adds them all after loading
        self.add_tokens([AddedToken(token, special=True) for token in self.all_special_tokens])


class OpenAIGPTTokenizer(_Family):
    """OpenAI GPT (BPE with `</w>` word ends, lower-cased BERT-style words): no special tokens around the text."""

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    defaults = {"unk_token": "<unk>"}
    template_overrides_file = False

    def _backend_from_vocab(self, kwargs):
        vocab, merges = kwargs.get("vocab"), kwargs.get("merges")
        if not isinstance(vocab, dict):
            if not kwargs.get("vocab_file") or not kwargs.get("merges_file"):
                return None
            vocab, merges = BPE.read_file(kwargs["vocab_file"], kwargs["merges_file"])
        pairs = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges or []]
        return Tokenizer(BPE(vocab, pairs, dropout=None, continuing_subword_prefix="", end_of_word_suffix="</w>",
                             fuse_unk=False, unk_token=str(kwargs.get("unk_token"))))

    def _configure_pipeline(self):
        self._tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        self._tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self._tokenizer.decoder = decoders.BPEDecoder(suffix="</w>")

    @property
    def do_lower_case(self) -> bool:
        return True


# ---- SentencePiece ----
class _SentencePieceFamily(_Family):
    """Families converted from a SentencePiece model file."""

    vocab_files_names = {"vocab_file": "spiece.model"}
    family = ""  # name given to converters.sentencepiece_tokenizer
    converter_options = ("extra_ids", "unk_id", "offset", "mask_token_sent")  # keywords that shape the vocabulary

    def _backend_from_vocab(self, kwargs):
        if not kwargs.get("vocab_file"):
            return None
        from .converters import sentencepiece_tokenizer

        # the family options and special-token strings decide the vocabulary layout (fairseq order, sentinels)
        options = {key: str(value) for key, value in kwargs.items()
                   if key in self.SPECIAL_TOKENS_ATTRIBUTES and value is not None}
        options.update({key: kwargs[key] for key in (*self.options, *self.converter_options) if key in kwargs})
        backend = sentencepiece_tokenizer(kwargs["vocab_file"], self.family, **options)
        # the control and user-defined pieces of the model file are the extra special tokens, as in transformers
        kwargs["additional_special_tokens"] = [token for _, token in sorted(backend.get_added_tokens_decoder().items())]
        return backend

    def _charsmap_normalizer(self):
        charsmap = _precompiled_charsmap(self._tokenizer)
        return normalizers.Precompiled(charsmap) if charsmap is not None else None

    def _whitespace_metaspace(self, prepend_scheme: str, split: bool = True):
        pre, decoder = _metaspace(prepend_scheme, split)
        self._tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre])
        self._tokenizer.decoder = decoder


class XLMRobertaTokenizer(_SentencePieceFamily):
    """XLM-RoBERTa (Unigram): `<s> A </s>` and `<s> A </s></s> B </s>`."""

    vocab_files_names = {"vocab_file": "sentencepiece.bpe.model"}
    family = "xlm-roberta"
    defaults = {"add_prefix_space": True, "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}
    options = ("add_prefix_space",)

    def _configure_pipeline(self):
        self._tokenizer.normalizer = self._charsmap_normalizer()
        self._whitespace_metaspace("always" if self.add_prefix_space else "never")

    def _family_template(self):
        bos, eos = str(self.bos_token), str(self.eos_token)
        return template([bos, "$A", eos], [bos, "$A", eos, eos, "$B", eos],
                        [(bos, self.bos_token_id), (eos, self.eos_token_id)])


class CamembertTokenizer(XLMRobertaTokenizer):
    """CamemBERT (Unigram): XLM-RoBERTa's layout, with a mask token that eats the space before it."""

    family = "camembert"
    defaults = {"additional_special_tokens": ["<s>NOTUSED", "</s>NOTUSED", "<unk>NOTUSED"]}

    def _adjust_kwargs(self, kwargs):
        kwargs["mask_token"] = _with_lstrip(kwargs.get("mask_token"), special=True)
        return kwargs


class AlbertTokenizer(_SentencePieceFamily):
    """ALBERT (Unigram): `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` with token type ids 0/1, which ALBERT
    models embed (transformers 4.x returned them; 5.x does not)."""

    family = "albert"
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    defaults = {"do_lower_case": True, "keep_accents": False, "bos_token": "[CLS]", "eos_token": "[SEP]",
                "unk_token": "<unk>", "sep_token": "[SEP]", "pad_token": "<pad>", "cls_token": "[CLS]",
                "mask_token": "[MASK]", "add_prefix_space": True, "trim_offsets": True}
    options = ("do_lower_case", "keep_accents", "add_prefix_space", "trim_offsets")
    template_overrides_file = False

    def _configure_pipeline(self):
        steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
        if not self.keep_accents:
            steps += [normalizers.NFKD(), normalizers.StripAccents()]
        if self.do_lower_case:
            steps.append(normalizers.Lowercase())
        charsmap = self._charsmap_normalizer()
        self._tokenizer.normalizer = normalizers.Sequence(steps + ([charsmap] if charsmap is not None else []))
        self._whitespace_metaspace("always" if self.add_prefix_space else "never")

    def _family_template(self):
        cls, sep = str(self.cls_token), str(self.sep_token)
        return template(f"{cls}:0 $A:0 {sep}:0", f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
                        [(cls, self.cls_token_id), (sep, self.sep_token_id)])


class XLNetTokenizer(_SentencePieceFamily):
    """XLNet (Unigram): `A <sep> <cls>` and `A <sep> B <sep> <cls>`, <cls> with token type 2, left padding. Token
    type ids are returned, as transformers 4.x did: XLNet models encode them as segments (5.x leaves them out)."""

    family = "xlnet"
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side = "left"
    defaults = {"unk_id": 0, "do_lower_case": False, "remove_space": True, "keep_accents": False,
                "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "<sep>",
                "pad_token": "<pad>", "cls_token": "<cls>", "mask_token": "<mask>",
                "additional_special_tokens": ["<eop>", "<eod>"]}
    options = ("do_lower_case", "remove_space", "keep_accents")

    def _adjust_kwargs(self, kwargs):
        kwargs["mask_token"] = _with_lstrip(kwargs.get("mask_token"))
        return kwargs

    def _configure_pipeline(self):
        steps = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.NFKD(),
                 normalizers.StripAccents()]
        if self.do_lower_case:
            steps.append(normalizers.Lowercase())
        charsmap = self._charsmap_normalizer()
        self._tokenizer.normalizer = normalizers.Sequence(steps + ([charsmap] if charsmap is not None else []))
        self._whitespace_metaspace("always")

    def _family_template(self):
        sep, cls = str(self.sep_token), str(self.cls_token)
        return template(f"$A:0 {sep}:0 {cls}:2", f"$A:0 {sep}:0 $B:1 {sep}:1 {cls}:2",
                        [(sep, self.sep_token_id), (cls, self.cls_token_id)])


class T5Tokenizer(_SentencePieceFamily):
    """T5 (Unigram): `A </s>` and `A </s> B </s>`, with the sentinel tokens <extra_id_0> ... <extra_id_{N-1}>."""

    family = "t5"
    defaults = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "extra_ids": 100}

    def _adjust_kwargs(self, kwargs):
        extra_ids = kwargs.get("extra_ids", 100)
        given = kwargs.get("additional_special_tokens")
        if given is None:
            kwargs["additional_special_tokens"] = [f"<extra_id_{i}>" for i in range(extra_ids)]
            return kwargs
        sentinels = [token for token in given if "<extra_id_" in str(token)]
        if not sentinels:
            kwargs["additional_special_tokens"] = list(given) + [f"<extra_id_{i}>" for i in range(extra_ids)]
        elif extra_ids > 0 and extra_ids != len(sentinels):
            raise TokenizerError(f"extra_ids={extra_ids} but additional_special_tokens holds {len(sentinels)} "
                                 f"<extra_id_N> tokens: make them agree, or pass extra_ids=0.")
        return kwargs

    def _configure_pipeline(self):
        self._tokenizer.normalizer = self._charsmap_normalizer()
        self._whitespace_metaspace("always")

    def _family_template(self):
        return template(["$A", "</s>"], ["$A", "</s>", "$B", "</s>"], [("</s>", self.eos_token_id)])

    def get_sentinel_tokens(self) -> list[str]:
        """The <extra_id_N> tokens among the extra special tokens."""
        return [token for token in self.extra_special_tokens if "<extra_id_" in token]

    def get_sentinel_token_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.get_sentinel_tokens())


class LlamaTokenizer(_SentencePieceFamily):
    """Llama (BPE with byte fallback): `<s>` before the text when the checkpoint asks for it; left padding."""

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    family = "llama"
    padding_side = "left"
    defaults = {"clean_up_tokenization_spaces": False, "unk_token": "<unk>", "bos_token": "<s>",
                "eos_token": "</s>", "use_default_system_prompt": False, "legacy": False, "add_prefix_space": None}
    options = ("legacy", "add_prefix_space", "use_default_system_prompt")
    template_overrides_file = False

    def _configure_pipeline(self):
        prefix = self.add_prefix_space if self.add_prefix_space is not None else True
        scheme = ("first" if not self.legacy else "always") if prefix else "never"
        backend = self._tokenizer
        backend.normalizer = None
        backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE_UNDERLINE, prepend_scheme=scheme,
                                                         split=False)
        steps = [decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(), decoders.Fuse()]
        if prefix:
            steps.append(decoders.Strip(content=" ", left=1))
        backend.decoder = decoders.Sequence(steps)


class PegasusTokenizer(_SentencePieceFamily):
    """Pegasus (Unigram): `A </s>` and `A B </s>`, with <unk_2> ... <unk_{offset-1}> reserved."""

    family = "pegasus"
    defaults = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask_2>",
                "mask_token_sent": "<mask_1>", "offset": 103}

    def _adjust_kwargs(self, kwargs):
        sentence_mask, given = kwargs.get("mask_token_sent"), kwargs.get("additional_special_tokens")
        extra = [] if given is not None and sentence_mask in given else (
            [sentence_mask] if sentence_mask is not None else [])
        kwargs["additional_special_tokens"] = extra + [f"<unk_{i}>" for i in range(2, kwargs.get("offset", 103))]
        return kwargs

    def _configure_pipeline(self):
        charsmap = self._charsmap_normalizer()
        first = charsmap if charsmap is not None else normalizers.Replace(Regex(r"\n"), " ")
        self._tokenizer.normalizer = normalizers.Sequence([first, normalizers.Replace(Regex(r" {2,}"), " ")])
        pre, decoder = _metaspace("always")
        self._tokenizer.pre_tokenizer, self._tokenizer.decoder = pre, decoder

    def _family_template(self):
        eos = str(self.eos_token)
        return template(f"$A {eos}", f"$A $B {eos}", [(eos, self.eos_token_id)])


class MBartTokenizer(_SentencePieceFamily):
    """mBART (Unigram): `A </s> src_lang` (and `A B </s> src_lang`); targets end with the target language code."""

    vocab_files_names = {"vocab_file": "sentencepiece.bpe.model"}
    family = "mbart"
    defaults = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>", "src_lang": None,
                "tgt_lang": None}
    prefix_tokens: list[int] = []
    suffix_tokens: list[int] = []

    def _adjust_kwargs(self, kwargs):
        kwargs["mask_token"] = _with_lstrip(kwargs.get("mask_token"))
        given = kwargs.get("additional_special_tokens") or []
        kwargs["additional_special_tokens"] = MBART_LANGUAGE_CODES + [t for t in given if t not in MBART_LANGUAGE_CODES]
        self._src_lang = kwargs.get("src_lang") or "en_XX"
        self.tgt_lang = kwargs.get("tgt_lang")
        return kwargs

    def _configure_pipeline(self):
        self._tokenizer.normalizer = None
        self._whitespace_metaspace("always")

    @property
    def src_lang(self) -> str:
        return self._src_lang

    @src_lang.setter
    def src_lang(self, value: str):
        self._src_lang = value
        self.set_src_lang_special_tokens(value)

    @property
    def lang_code_to_id(self) -> dict[str, int]:
        return {code: self.convert_tokens_to_ids(code) for code in MBART_LANGUAGE_CODES}

    def _language_template(self, lang: str):
        self.cur_lang_code = self.convert_tokens_to_ids(lang)
        self.prefix_tokens, self.suffix_tokens = [], [self.eos_token_id, self.cur_lang_code]
        names = self.convert_ids_to_tokens(self.suffix_tokens)
        return template(["$A", *names], ["$A", "$B", *names], list(zip(names, self.suffix_tokens)))

    def _family_template(self):
        return self._language_template(self._src_lang)

    def set_src_lang_special_tokens(self, src_lang: str):
        """Inputs end with `</s> src_lang`."""
        self._tokenizer.post_processor = self._language_template(src_lang)

    def set_tgt_lang_special_tokens(self, lang: str):
        """Targets end with `</s> tgt_lang`."""
        self._tokenizer.post_processor = self._language_template(lang)

    def _switch_to_input_mode(self):
        self.set_src_lang_special_tokens(self.src_lang)

    def _switch_to_target_mode(self):
        if self.tgt_lang is None:
            self.tgt_lang = self._src_lang
        self.set_tgt_lang_special_tokens(self.tgt_lang)

    def _build_translation_inputs(self, raw_inputs, return_tensors, src_lang, tgt_lang, **extra_kwargs):
        """Inputs for translation: the source text with its language code, and the target code to start with."""
        if src_lang is None or tgt_lang is None:
            raise TokenizerError("Translation with mBART needs src_lang and tgt_lang (language codes like 'en_XX').")
        self.src_lang = src_lang
        inputs = self(raw_inputs, add_special_tokens=True, return_tensors=return_tensors, **extra_kwargs)
        inputs["forced_bos_token_id"] = self.convert_tokens_to_ids(tgt_lang)
        return inputs


# transformers 5 names the classes without "Fast"; the old names stay as aliases
BertTokenizerFast = BertTokenizer
DistilBertTokenizerFast = DistilBertTokenizer
RetriBertTokenizerFast = RetriBertTokenizer
GPT2TokenizerFast = GPT2Tokenizer
RobertaTokenizerFast = RobertaTokenizer
BartTokenizerFast = BartTokenizer
Qwen2TokenizerFast = Qwen2Tokenizer
OpenAIGPTTokenizerFast = OpenAIGPTTokenizer
XLMRobertaTokenizerFast = XLMRobertaTokenizer
CamembertTokenizerFast = CamembertTokenizer
AlbertTokenizerFast = AlbertTokenizer
XLNetTokenizerFast = XLNetTokenizer
T5TokenizerFast = T5Tokenizer
LlamaTokenizerFast = LlamaTokenizer
PegasusTokenizerFast = PegasusTokenizer
MBartTokenizerFast = MBartTokenizer
ElectraTokenizerFast = ElectraTokenizer
MobileBertTokenizerFast = MobileBertTokenizer
