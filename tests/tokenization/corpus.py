"""Tokenizer parity corpus: inputs only (expected outputs always come from the reference).

`corpus()` returns a deterministic list of several hundred strings covering English prose, questions, contractions,
numbers, dates, URLs, e-mails, code, CJK, Arabic, Cyrillic, accented text in NFC and NFD, emoji (ZWJ sequences,
flags, skin tones), odd whitespace, control and zero-width characters, special tokens written inline, the empty
string, a single space and very long texts from botchan.txt. `pairs()` returns sentence pairs built from it.
"""

from __future__ import annotations

import random
import unicodedata
from functools import lru_cache
from pathlib import Path

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world!",
    "Tokenizers split text into pieces that a model can read.",
    "She sells sea shells by the sea shore; the shells she sells are surely seashells.",
    "In 1905 Einstein published four papers that changed physics forever.",
    "A man, a plan, a canal: Panama.",
    "Machine learning models are trained on large amounts of data.",
    "The meeting was postponed until next Tuesday afternoon.",
    "He said, \"I'll be there at noon,\" but he never came.",
    "Colorless green ideas sleep furiously.",
    "Unbelievably, the unbreakable vase shattered into innumerable fragments.",
    "Antidisestablishmentarianism is a famously long English word.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis",
    "It was the best of times, it was the worst of times.",
    "To be, or not to be: that is the question.",
    "All happy families are alike; each unhappy family is unhappy in its own way.",
    "Call me Ishmael.",
    "The rain in Spain stays mainly in the plain.",
    "Rock 'n' roll never dies -- or so they say...",
    "Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly normal.",
    "HELLO WORLD IN CAPITAL LETTERS",
    "mIxEd CaSe TeXt LoOkS oDd",
    "e.g. i.e. etc. vs. a.m. p.m. U.S.A.",
    "well-known state-of-the-art long-term mother-in-law",
    "semi;colons, commas, and: colons! (parentheses) [brackets] {braces} <angles>",
    "``LaTeX quotes'' and 'single quotes' and \"double quotes\"",
    "Ellipsis… em—dash – en-dash ‘curly’ “quotes” «guillemets» ‹single›",
    "naïve café résumé façade coöperate jalapeño",
]
QUESTIONS = [
    "What is the capital of France?",
    "How many tokens does this sentence have?",
    "Why is the sky blue?",
    "Who wrote 'Pride and Prejudice'?",
    "Is it raining?? Really?!",
    "Can you tell me the way to the station, please?",
    "Where did you put my keys?",
    "When does the next train leave for Boston?",
    "Which one do you prefer: tea or coffee?",
    "Do androids dream of electric sheep?",
]
CONTRACTIONS = [
    "I'm sure you're right, but they've already left and we'd better go.",
    "Don't, can't, won't, shouldn't, wouldn't, isn't, aren't.",
    "It's John's book, not the Smiths' car.",
    "Y'all'd've done it if you'd known.",
    "o'clock rock'n'roll ma'am ne'er-do-well",
    "I’m using a curly apostrophe; it’s different.",
]
NUMBERS = [
    "3.14159 2.71828 1.41421",
    "1,000,000 and 1.000.000 and 1 000 000",
    "The price is $19.99 (or €17,50, £15, ¥2000).",
    "Call +1 (555) 123-4567 or 555.987.6543 ext. 89",
    "2024-02-29T13:45:00Z",
    "On 12/31/1999 at 23:59:59 the clocks rolled over.",
    "1st 2nd 3rd 4th 21st 101st",
    "0x1F 0b1010 0o777 1e-10 6.022e23 -42 +7",
    "50% of 200 is 100; 3/4 = 0.75; 2^10 = 1024",
    "Version 2.0.1-beta+build.5",
    "ISBN 978-3-16-148410-0",
    "₹500 ₩1000 ₽300 ฿50 ₿0.001",
    "1234567890123456789012345678901234567890",
    "٠١٢٣٤٥٦٧٨٩ ०१२३४५६७८९ 一二三四五",
    "Ⅰ Ⅱ Ⅲ Ⅳ ½ ¾ ² ³ ① ② ③",
]
URLS_EMAILS = [
    "Visit https://huggingface.co/docs/transformers/index?query=tokenizer#fast for details.",
    "http://example.com/path/to/page.html?a=1&b=2",
    "ftp://files.example.org/pub/README.txt",
    "Send mail to john.doe+tag@example.co.uk or admin@localhost.",
    "www.gutenberg.org/ebooks/8868",
    "https://en.wikipedia.org/wiki/Caf%C3%A9",
    "user@例え.jp and münchen.de",
    "@username #hashtag $TICKER &amp; &lt;tag&gt;",
]
CODE = [
    "def add(a, b):\n    return a + b\n",
    "for (int i = 0; i < n; ++i) { sum += arr[i]; }",
    "console.log(`Hello ${name}!`);",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%smith%';",
    "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)",
    "if x != None and y >= 10 or z <= -5: pass",
    "<div class=\"container\"><p>Hello</p></div>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); }",
    "lambda x: x**2 // 3 % 7",
    "git commit -m 'Fix bug #123' && git push origin main",
    "$ pip install --upgrade 'transformers>=4.0'",
    "a_b_c __init__ self.__dict__ CamelCaseName snake_case_name",
    "\tindented\twith\ttabs\n\t\tand more",
]
CJK = [
    "今天天气很好，我们去公园散步吧。",
    "我爱自然语言处理。",
    "北京是中国的首都。",
    "東京は日本の首都です。",
    "吾輩は猫である。名前はまだ無い。",
    "ひらがなとカタカナと漢字が混ざった文章です。",
    "ｶﾀｶﾅ半角とＦＵＬＬＷＩＤＴＨ全角",
    "안녕하세요, 만나서 반갑습니다.",
    "한국어 형태소 분석은 어렵습니다.",
    "中文English混合text测试",
    "日本語とEnglishのmixed文章。",
    "「引用符」『二重引用符』【括弧】",
]
OTHER_SCRIPTS = [
    "مرحبا بالعالم",
    "اللغة العربية جميلة جداً.",
    "שלום עולם",
    "Привет, мир! Как дела?",
    "Ελληνικά: γειά σου κόσμε",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Xin chào thế giới",
    "Tiếng Việt có nhiều dấu thanh: ả ã ạ ặ ẫ",
    "ქართული ენა",
    "Հայերեն լեզու",
    "Türkçe: ğüşıöç İstanbul",
    "Polski: zażółć gęślą jaźń",
    "Čeština: příliš žluťoučký kůň úpěl ďábelské ódy",
]
ACCENTED = [
    "Café au lait, crème brûlée et pâté.",
    "Der Bär läuft über die Straße; Größe und Maß.",
    "El niño comió piña y jalapeños en Año Nuevo.",
    "São Paulo, coração, ação, não.",
    "Ångström, Øresund, Æble, smørrebrød.",
    "Mañana será otro día.",
    "Ça va? Où est la gare? Très bien!",
    "Åsa, Ödön, Ünal, Ïsa, Ÿves",
]
EMOJI = [
    "I love pizza 🍕🍕🍕!",
    "Family: 👨‍👩‍👧‍👦 and couple 👩‍❤️‍👨",
    "Flags: 🇫🇷 🇯🇵 🇺🇸 🇧🇷 🏳️‍🌈 🏴‍☠️",
    "Skin tones: 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "Keycaps: 1️⃣ 2️⃣ #️⃣ *️⃣",
    "😀😃😄😁😆😅😂🤣",
    "Text with emoji in the middle 🤖 of a sentence.",
    "❤️ ♥ ☺ ☹ ✓ ✗ ★ ☆",
    "🧑🏽‍💻 writes code; 👩🏿‍🔬 runs experiments.",
    "🫠🫶🪿 newer emoji",
]
WHITESPACE = [
    "two  spaces",
    "three   spaces   here",
    "  leading spaces",
    "trailing spaces  ",
    "\tleading tab",
    "tab\tseparated\tvalues",
    "line one\nline two\nline three",
    "windows\r\nline\r\nendings",
    "\n\nleading newlines",
    "trailing newlines\n\n",
    "non\u00a0breaking\u00a0space",
    "ideographic\u3000space\u3000here",
    "zero\u200bwidth\u200bspace",
    "zero\u200cwidth\u200dnon-joiner and joiner",
    "word\u2060joiner",
    "bom\ufeffin the middle",
    "thin\u2009space and hair\u200aspace and en\u2002space",
    "line\u2028separator and paragraph\u2029separator",
    "vertical\x0btab and form\x0cfeed",
    "   ",
    "\t\n\r",
    "\u00a0",
    "\u3000",
    "a \t \n b",
    " x ",
]
CONTROL = [
    "null\x00char",
    "bell\x07and\x08backspace",
    "escape\x1b[31mred\x1b[0m",
    "delete\x7fchar",
    "c1 control\x85next line\x9fend",
    "soft\u00adhyphen",
    "replacement \ufffd char",
    "private use \ue000\uf8ff",
    "rtl \u202emark\u202c and lrm \u200e",
    "combining a\u0301e\u0300o\u0302 alone \u0301",
    "variation selector \ufe0f after text",
    "surrogate-free astral 𝐀𝐁𝐂 𝔸𝔹ℂ 𝒶𝒷𝒸",
]
SPECIAL_INLINE = [
    "[CLS] the first token [SEP] then the second [SEP]",
    "<s> sentence one </s> </s> sentence two </s>",
    "fill the <mask> please",
    "fill the [MASK] please",
    "an <unk> token and a [UNK] token",
    "<pad><pad><pad> [PAD] [PAD]",
    "<s>no spaces</s>",
    "[CLS][SEP][MASK][UNK][PAD]",
    "<|endoftext|> GPT end marker <|endoftext|>",
    "<extra_id_0> sentinel <extra_id_1> tokens <extra_id_99>",
    "<cls> <sep> <eop> <eod>",
    "lower [cls] and [mask] are not special",
    "partial [CLS and <s and mask>",
    "<mask>",
    "</s>",
    "[CLS]",
    "<<SYS>> system prompt <</SYS>> [INST] user [/INST]",
    "en_XX some text ar_AR",
    ">>fr<< Bonjour",
]
EDGE = ["", " ", "a", ".", "?!", "...", "'", "\"", "-", "##", "▁", "▁▁hello", "Ġhello", "##ing", "<0x0A>", "\\n"]


@lru_cache(maxsize=1)
def _botchan() -> str:
    from conftest import fixture_path

    return Path(fixture_path("sentencepiece", "test", "botchan.txt")).read_text(encoding="utf-8")


def _long_texts() -> list[str]:
    text = _botchan()
    body = text[text.index("CHAPTER I") :] if "CHAPTER I" in text else text
    return [
        body[:2000],
        body[5000:9000],
        body[20000:26000].replace("\n", " "),
        " ".join(body[30000:33000].split()),
        "word " * 700,
        "🍕" * 300 + "a" * 600,
        "supercalifragilisticexpialidocious" * 12,
        "漢字" * 500,
    ]


def _botchan_lines(count: int) -> list[str]:
    lines = [line.strip() for line in _botchan().splitlines() if len(line.strip()) > 20]
    rng = random.Random(8868)
    return rng.sample(lines, count)


def _variants(base: list[str]) -> list[str]:
    """Case, spacing and Unicode-form variants of a few strings."""
    out = []
    for text in base:
        out += [text.upper(), text.lower(), " " + text, text + " ", text.replace(" ", "  "), text.replace(" ", "\t")]
    return out


def _normal_forms(texts: list[str]) -> list[str]:
    out = []
    for text in texts:
        for form in ("NFC", "NFD", "NFKC", "NFKD"):
            variant = unicodedata.normalize(form, text)
            if variant not in out:
                out.append(variant)
    return out


def _mixtures(pools: list[list[str]], count: int) -> list[str]:
    """Deterministic concatenations of strings drawn from different pools."""
    rng = random.Random(1234)
    joiners = [" ", "", "\n", " | ", ", ", "  "]
    out = []
    for _ in range(count):
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(2, 4))]
        out.append(rng.choice(joiners).join(parts))
    return out


@lru_cache(maxsize=1)
def _corpus() -> tuple[str, ...]:
    pools = [PROSE, QUESTIONS, CONTRACTIONS, NUMBERS, URLS_EMAILS, CODE, CJK, OTHER_SCRIPTS, ACCENTED, EMOJI,
             WHITESPACE, CONTROL, SPECIAL_INLINE]
    texts = [text for pool in pools for text in pool] + EDGE
    texts += _normal_forms(ACCENTED + OTHER_SCRIPTS[-6:] + ["e\u0301 vs \u00e9", "Å vs \u212b vs A\u030a", "ﬁ ﬂ ﬀ"])
    texts += _variants(PROSE[:6] + QUESTIONS[:2] + CONTRACTIONS[:2] + SPECIAL_INLINE[:4])
    texts += _botchan_lines(40)
    texts += _mixtures(pools, 60)
    texts += _long_texts()
    unique = list(dict.fromkeys(texts))  # keep first occurrences, in order
    return tuple(unique)


def corpus() -> list[str]:
    """All corpus strings (several hundred), in a fixed order."""
    return list(_corpus())


def short_corpus(max_chars: int = 400) -> list[str]:
    """The corpus without its very long texts."""
    return [text for text in _corpus() if len(text) <= max_chars]


def pairs() -> list[tuple[str, str]]:
    """Sentence pairs: neighbours, questions with answers-like text, long with short, empty sides."""
    texts = short_corpus()
    rng = random.Random(42)
    out = [(texts[i], texts[i + 1]) for i in range(0, min(len(texts) - 1, 120), 2)]
    out += [(rng.choice(QUESTIONS), rng.choice(PROSE)) for _ in range(20)]
    long = _long_texts()
    out += [(long[0], "short second"), ("short first", long[1]), (long[2], long[3])]
    out += [("", "second only"), ("first only", ""), (" ", " "), ("[CLS] x [SEP]", "<s> y </s>")]
    out += [(rng.choice(texts), rng.choice(texts)) for _ in range(30)]
    return out


# ------------------------------------------------------------------------------------------------- model files
def respelled_sentencepiece(source: Path, target: Path, head: list[tuple[str, int]], **trainer) -> Path:
    """Copy a SentencePiece model with its first three pieces replaced by `head` ((piece, type) pairs).

    Real ALBERT and Pegasus model files order their special pieces differently from the small SentencePiece test
    models; this writes a model with such a layout. `trainer` sets trainer_spec fields (unk_id=, pad_id=, ...).
    """
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(source).read_bytes())
    rest = [(p.piece, p.score, p.type) for p in proto.pieces][3:]
    del proto.pieces[:]
    for piece, score, kind in [(piece, 0.0, kind) for piece, kind in head] + rest:
        entry = proto.pieces.add()
        entry.piece, entry.score, entry.type = piece, score, kind
    for name, value in trainer.items():
        setattr(proto.trainer_spec, name, value)
    Path(target).write_bytes(proto.SerializeToString())
    return Path(target)


PIECE_CONTROL, PIECE_UNKNOWN, PIECE_USER = 3, 2, 4  # SentencePiece piece types
ALBERT_LAYOUT = dict(
    head=[("<pad>", PIECE_CONTROL), ("<unk>", PIECE_UNKNOWN), ("[CLS]", PIECE_CONTROL), ("[SEP]", PIECE_CONTROL),
          ("[MASK]", PIECE_USER)],
    pad_id=0, unk_id=1, bos_id=2, eos_id=3, bos_piece="[CLS]", eos_piece="[SEP]",
)
PEGASUS_LAYOUT = dict(
    head=[("<pad>", PIECE_CONTROL), ("</s>", PIECE_CONTROL), ("<unk>", PIECE_UNKNOWN)],
    pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
)
USER_DEFINED_LAYOUT = dict(
    head=[("<unk>", PIECE_UNKNOWN), ("<s>", PIECE_CONTROL), ("</s>", PIECE_CONTROL), ("<sep>", PIECE_USER),
          ("@@", PIECE_USER)],
    unk_id=0, bos_id=1, eos_id=2,
)
