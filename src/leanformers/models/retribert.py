"""RetriBERT: BERT encoders (one shared, or one for questions and one for answers) whose pooled outputs are projected
into a common space; the loss matches each question to its answer within the batch, both ways."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils import checkpoint

from ..configuration import PretrainedConfig
from ..modeling import PreTrainedModel
from .bert import BertModel


class RetriBertConfig(PretrainedConfig):
    model_type = "retribert"
    defaults = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=8, num_attention_heads=12,
                    intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                    initializer_range=0.02, layer_norm_eps=1e-12, share_encoders=True, projection_dim=128,
                    pad_token_id=0)


class RetriBertPreTrainedModel(PreTrainedModel):
    config_class = RetriBertConfig
    base_model_prefix = "retribert"
    # older checkpoints saved these buffers of the BERT embeddings; they are recomputed here
    _keys_to_ignore_on_load_unexpected = (r"embeddings\.position_ids$", r"embeddings\.token_type_ids$")


class RetriBertModel(RetriBertPreTrainedModel):
    """`embed_questions` / `embed_answers` give the projected vectors; forward() gives the retrieval loss."""

    def __init__(self, config: RetriBertConfig):
        super().__init__(config)
        self.projection_dim = config.projection_dim
        self.bert_query = BertModel(config)
        self.bert_doc = None if config.share_encoders else BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.project_query = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.project_doc = nn.Linear(config.hidden_size, config.projection_dim, bias=False)
        self.post_init()

    def embed_sentences_checkpointed(self, input_ids, attention_mask, sent_encoder, checkpoint_batch_size=-1):
        """Pooled outputs of `sent_encoder`; with checkpoint_batch_size > 0 (and at least that many rows) the rows
        run in chunks of that size under gradient checkpointing, which keeps only each chunk's output."""
        if checkpoint_batch_size < 0 or input_ids.shape[0] < checkpoint_batch_size:
            return sent_encoder(input_ids, attention_mask=attention_mask, return_dict=True).pooler_output
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)

        def pooled(ids, mask):
            return sent_encoder(ids, attention_mask=mask, return_dict=True).pooler_output

        parts = [checkpoint.checkpoint(pooled, ids, mask, use_reentrant=False)
                 for ids, mask in zip(input_ids.split(checkpoint_batch_size),
                                      attention_mask.split(checkpoint_batch_size))]
        return torch.cat(parts, dim=0)

    def embed_questions(self, input_ids, attention_mask=None, checkpoint_batch_size=-1):
        reps = self.embed_sentences_checkpointed(input_ids, attention_mask, self.bert_query, checkpoint_batch_size)
        return self.project_query(reps)

    def embed_answers(self, input_ids, attention_mask=None, checkpoint_batch_size=-1):
        encoder = self.bert_query if self.bert_doc is None else self.bert_doc
        reps = self.embed_sentences_checkpointed(input_ids, attention_mask, encoder, checkpoint_batch_size)
        return self.project_doc(reps)

    def forward(self, input_ids_query, attention_mask_query, input_ids_doc, attention_mask_doc,
                checkpoint_batch_size: int = -1):
        """The mean of two cross-entropies over the (questions, answers) score matrix: each question against all
        answers of the batch (its own is the target), and each answer against all questions."""
        questions = self.embed_questions(input_ids_query, attention_mask_query, checkpoint_batch_size)
        answers = self.embed_answers(input_ids_doc, attention_mask_doc, checkpoint_batch_size)
        scores = questions @ answers.t()                                        # (questions, answers)
        targets_qa = torch.arange(scores.shape[1], device=scores.device)
        targets_aq = torch.arange(scores.shape[0], device=scores.device)
        return (F.cross_entropy(scores, targets_qa) + F.cross_entropy(scores.t(), targets_aq)) / 2
