"""Tiny random checkpoints for pipeline tests, written by the reference transformers (hidden 32, 2 layers).

Tokenizers: a WordPiece vocabulary (BERT), byte-level BPE vocabularies trained here on a few sentences (GPT-2,
BART, RoBERTa) and the real SentencePiece unigram model of the sentencepiece package (T5, mBART). Tokenizer files
are kept readable by transformers 4.55 too, so the legacy reference loads the very same folders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

WORDS = ["the", "cat", "sat", "on", "mat", ".", ",", "!", "?", "hello", "world", "where", "do", "i", "work", "my",
         "name", "is", "and", "at", "in", "paris", "france", "capital", "of", "great", "sylvain", "face", "brooklyn"]
WORDPIECE = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz",
             *("##" + c for c in "abcdefghijklmnopqrstuvwxyz"), *WORDS]
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
CORPUS = ["The cat sat on the mat.", "My name is Sylvain and I work at Hugging Face in Brooklyn.",
          "Paris is the capital of France.", "Where do I work? Hello world!", "Summaries are shorter than texts.",
          "A long document talks about many things, and the summary keeps only what matters."] * 20
BERT = dict(vocab_size=len(WORDPIECE), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=512, initializer_range=0.2)


def _labels(names):
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


BERT_HEADS = {
    "bert-base": ("BertModel", {}),
    "bert-mlm": ("BertForMaskedLM", {}),
    "bert-ner": ("BertForTokenClassification", _labels(NER_LABELS)),
    "bert-qa": ("BertForQuestionAnswering", {}),
    "bert-cls": ("BertForSequenceClassification", _labels(["NEGATIVE", "NEUTRAL", "POSITIVE"])),
    "bert-nli": ("BertForSequenceClassification", _labels(["contradiction", "neutral", "entailment"])),
    "bert-nli-unnamed": ("BertForSequenceClassification", {"num_labels": 3}),
    "bert-regression": ("BertForSequenceClassification", {"num_labels": 1, "problem_type": "regression"}),
}


def _save(model, tokenizer, folder: Path) -> Path:
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _legacy_readable(folder)
    return folder


def _legacy_readable(folder: Path):
    """transformers 5 writes extra special tokens as a list that 4.55 cannot read; write them the 4.55 way."""
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    path.write_text(json.dumps(config, indent=2))


def build_bert(name: str, folder: Path) -> Path:
    import transformers

    class_name, extra = BERT_HEADS[name]
    torch.manual_seed(0)
    model = getattr(transformers, class_name)(transformers.BertConfig(**BERT, **extra))
    tokenizer = transformers.BertTokenizer(vocab={token: i for i, token in enumerate(WORDPIECE)})
    return _save(model, tokenizer, folder)


def _bpe_files(folder: Path, specials: list[str]) -> Path:
    """vocab.json + merges.txt of a byte-level BPE trained on CORPUS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.model.save(str(folder))
    return folder


def build_gpt2(folder: Path) -> Path:
    import transformers

    tokenizer = transformers.GPT2Tokenizer.from_pretrained(str(_bpe_files(folder / "bpe", ["<|endoftext|>"])))
    torch.manual_seed(1)
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                     initializer_range=0.2, bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
    return _save(transformers.GPT2LMHeadModel(config), tokenizer, folder)


CHAT_TEMPLATE = ("{% for message in messages %}<|endoftext|>{{ message['role'] }}: {{ message['content'] }}\n"
                 "{% endfor %}{% if add_generation_prompt %}<|endoftext|>assistant:{% endif %}")


def chat_copy(source: Path, folder: Path) -> Path:
    """The same checkpoint with a chat template (saved by the reference tokenizer)."""
    import transformers

    shutil.copytree(source, folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


def _bart_sizes(tokenizer) -> dict:
    """The config of the tiny BART-shaped models (BART, mBART), with the tokenizer's special tokens."""
    return dict(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=128, init_std=0.3,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id, forced_eos_token_id=tokenizer.eos_token_id)


def build_bart(folder: Path) -> Path:
    import transformers

    files = _bpe_files(folder / "bpe", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = transformers.BartTokenizer.from_pretrained(str(files))
    torch.manual_seed(0)
    config = transformers.BartConfig(**_bart_sizes(tokenizer))
    return _save(transformers.BartForConditionalGeneration(config), tokenizer, folder)


def build_roberta_ner(folder: Path) -> Path:
    import transformers

    files = _bpe_files(folder / "bpe", ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = transformers.RobertaTokenizer.from_pretrained(str(files))
    torch.manual_seed(0)
    config = transformers.RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=37, max_position_embeddings=130,
                                        initializer_range=0.2, pad_token_id=tokenizer.pad_token_id,
                                        **_labels(NER_LABELS))
    return _save(transformers.RobertaForTokenClassification(config), tokenizer, folder)


def build_t5(folder: Path, spiece: Path) -> Path:
    import transformers

    (folder / "spm").mkdir(parents=True, exist_ok=True)
    shutil.copy(spiece, folder / "spm" / "spiece.model")
    tokenizer = transformers.T5Tokenizer.from_pretrained(str(folder / "spm"))
    torch.manual_seed(2)
    tasks = {"summarization": {"prefix": "summarize: ", "max_length": 30, "min_length": 5, "num_beams": 2,
                               "no_repeat_ngram_size": 3},
             "translation_en_to_de": {"prefix": "translate English to German: ", "max_length": 25, "num_beams": 3}}
    config = transformers.T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                                   decoder_start_token_id=tokenizer.pad_token_id, pad_token_id=tokenizer.pad_token_id,
                                   eos_token_id=tokenizer.eos_token_id, task_specific_params=tasks)
    return _save(transformers.T5ForConditionalGeneration(config), tokenizer, folder)


def build_mbart(folder: Path, spiece: Path) -> Path:
    """A multilingual translation model: its tokenizer ends inputs with a language code (src_lang) and generation
    starts with the target language's code (tgt_lang)."""
    import transformers

    (folder / "spm").mkdir(parents=True, exist_ok=True)
    shutil.copy(spiece, folder / "spm" / "sentencepiece.bpe.model")
    tokenizer = transformers.MBartTokenizer.from_pretrained(str(folder / "spm"), src_lang="en_XX", tgt_lang="ro_RO")
    torch.manual_seed(0)
    config = transformers.MBartConfig(**_bart_sizes(tokenizer))
    return _save(transformers.MBartForConditionalGeneration(config), tokenizer, folder)


# generation settings a checkpoint may ship, like real ones (distilbart-cnn sets max_length 142, min_length 56, ...)
GENERATION_COPIES = {
    "bart-summarizer": ("bart", {"max_length": 24, "min_length": 4, "num_beams": 2, "no_repeat_ngram_size": 3,
                                 "length_penalty": 2.0, "early_stopping": True}),
    "gpt2-max-length": ("gpt2", {"max_length": 50}),
}


def generation_copy(source: Path, folder: Path, settings: dict) -> Path:
    """The same checkpoint with more settings in its generation_config.json (written by the reference)."""
    import transformers

    shutil.copytree(source, folder)
    config = transformers.GenerationConfig.from_pretrained(str(folder))
    config.update(**settings)
    config._from_model_config = False
    config.save_pretrained(str(folder))
    return folder


def left_padded_copy(source: Path, folder: Path) -> Path:
    """The same checkpoint with a tokenizer that pads on the left (QA then puts the context first)."""
    shutil.copytree(source, folder)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["padding_side"] = "left"
    path.write_text(json.dumps(config, indent=2))
    return folder
