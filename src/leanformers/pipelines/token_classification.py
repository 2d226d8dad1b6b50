"""token-classification (alias ner): a label per token, optionally regrouped into words and entities."""

from __future__ import annotations

import enum
import warnings

import numpy as np

from .base import ChunkPipeline, encoding_rows, require_text
from .errors import PipelineInputError


class AggregationStrategy(str, enum.Enum):
    """How token predictions are merged: none (one entry per token), simple (adjacent tokens with the same entity
    type), first / average / max (whole words first, taking the first token's, the mean, or the most confident
    token's label)."""

    NONE = "none"
    SIMPLE = "simple"
    FIRST = "first"
    AVERAGE = "average"
    MAX = "max"


_WORD_LEVEL = (AggregationStrategy.FIRST, AggregationStrategy.AVERAGE, AggregationStrategy.MAX)


def _strategy(value) -> AggregationStrategy:
    if isinstance(value, AggregationStrategy):
        return value
    try:
        return AggregationStrategy[str(value).upper()]
    except KeyError:
        raise PipelineInputError(f"aggregation_strategy={value!r} is not one of none, simple, first, average, "
                                 f"max.") from None


class TokenClassificationPipeline(ChunkPipeline):
    """Text -> list of entities: {"entity", "score", "index", "word", "start", "end"} per token, or with an
    aggregation strategy {"entity_group", "score", "word", "start", "end"} per entity."""

    task_name = "token-classification"
    sequence_outputs = ("logits",)
    default_input_names = "sequences"

    def _sanitize_parameters(self, ignore_labels=None, grouped_entities=None, ignore_subwords=None,
                             aggregation_strategy=None, offset_mapping=None, is_split_into_words=False, stride=None,
                             delimiter=None):
        preprocess = {"is_split_into_words": is_split_into_words}
        if is_split_into_words:
            preprocess["delimiter"] = " " if delimiter is None else delimiter
        if offset_mapping is not None:
            preprocess["offset_mapping"] = offset_mapping
        if grouped_entities is not None or ignore_subwords is not None:  # the transformers 4 spelling
            aggregation_strategy = (AggregationStrategy.FIRST if grouped_entities and ignore_subwords else
                                    AggregationStrategy.SIMPLE if grouped_entities else AggregationStrategy.NONE)
        postprocess = {}
        if aggregation_strategy is not None:
            aggregation_strategy = _strategy(aggregation_strategy)
            postprocess["aggregation_strategy"] = aggregation_strategy
        if ignore_labels is not None:
            postprocess["ignore_labels"] = ignore_labels
        if stride is not None:
            if stride >= self.tokenizer.model_max_length:
                raise PipelineInputError("stride must be smaller than tokenizer.model_max_length (minus the special "
                                         "tokens the tokenizer adds).")
            if aggregation_strategy in (None, AggregationStrategy.NONE):
                raise PipelineInputError('stride splits a long text into overlapping chunks whose entities are then '
                                         'merged: it needs aggregation_strategy="simple", "first", "average" or '
                                         '"max", not "none".')
            preprocess["stride"] = stride
        return preprocess, {}, postprocess

    def __call__(self, inputs, **kwargs):
        if inputs is None or (isinstance(inputs, (list, tuple)) and len(inputs) == 0):
            raise PipelineInputError("At least one input is required: pass a text or a list of texts.")
        if kwargs.get("is_split_into_words") and isinstance(inputs, (list, tuple)) and \
                not all(isinstance(item, list) for item in inputs):
            return super().__call__([list(inputs)], **kwargs)
        offsets = kwargs.get("offset_mapping")
        if offsets and isinstance(offsets, list) and isinstance(offsets[0], tuple):
            kwargs["offset_mapping"] = [offsets]
        return super().__call__(inputs, **kwargs)

    # ------------------------------------------------------------------ inputs
    def _preprocess_many(self, items, is_split_into_words=False, delimiter=None, offset_mapping=None, stride=None):
        if not is_split_into_words and offset_mapping is None and stride is None and \
                all(isinstance(item, str) and item.strip() for item in items):
            encoding = self._tokenize(list(items), {})
            return [[self._feature(text, row, 0, 1, None, None)] for text, row in
                    zip(items, encoding_rows(encoding))]
        return [list(self.preprocess(item, is_split_into_words, delimiter, offset_mapping, stride))
                for item in items]

    def _tokenize(self, text, extra: dict):
        max_length = self.tokenizer.model_max_length
        return self.tokenizer(text, truncation=bool(max_length and max_length > 0), return_special_tokens_mask=True,
                              return_offsets_mapping=True, **extra)

    def preprocess(self, sentence, is_split_into_words=False, delimiter=None, offset_mapping=None, stride=None):
        extra, word_spans = {}, None
        if is_split_into_words:
            if not isinstance(sentence, list):
                raise PipelineInputError("With is_split_into_words=True, each input must be a list of words.")
            words = [require_text(word, "word", allow_empty=True) for word in sentence]
            delimiter = " " if delimiter is None else delimiter
            sentence = delimiter.join(words)  # the text entity offsets point into
            word_spans, position = [], 0
            for word in words:
                word_spans.append((position, position + len(word)))
                position += len(word) + len(delimiter)
            text, extra["is_split_into_words"] = words, True
        else:
            if isinstance(sentence, list):
                raise PipelineInputError("Each input must be an untokenized string; for lists of words pass "
                                         "is_split_into_words=True.")
            text = require_text(sentence)
        if stride is not None:
            extra.update(return_overflowing_tokens=True, stride=stride)
        encoding = self._tokenize([text], extra)
        rows = encoding_rows(encoding)
        for index, row in enumerate(rows):
            word_ids = encoding.word_ids(index) if word_spans is not None else None
            yield self._feature(sentence if index == 0 else None, row, index, len(rows), word_ids, word_spans,
                                offset_mapping)

    def _feature(self, sentence, row, index, count, word_ids, word_spans, user_offsets=None) -> dict:
        row = dict(row)
        feature = {"special_tokens_mask": row.pop("special_tokens_mask"), "sentence": sentence,
                   "offset_mapping": row.pop("offset_mapping", None), "word_ids": word_ids,
                   "word_to_chars_map": word_spans, "is_last": index == count - 1}
        row.pop("overflow_to_sample_mapping", None)
        if user_offsets is not None:  # offsets given by the caller (transformers reads the first input's)
            feature["offset_mapping"] = user_offsets[0]
        feature["model_inputs"] = row
        return feature

    def _forward(self, model_inputs, **forward_params):
        outputs = self.model(**model_inputs)
        return {"logits": outputs["logits"] if isinstance(outputs, dict) else outputs[0]}

    # ------------------------------------------------------------------ outputs
    def postprocess(self, all_outputs, aggregation_strategy=AggregationStrategy.NONE, ignore_labels=None):
        ignore_labels = ["O"] if ignore_labels is None else ignore_labels
        sentence = all_outputs[0]["sentence"]
        word_spans = all_outputs[0].get("word_to_chars_map")
        entities = []
        for output in all_outputs:
            logits = output["logits"].float().numpy()
            shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
            scores = shifted / shifted.sum(axis=-1, keepdims=True)
            pre_entities = self.gather_pre_entities(
                sentence, output["model_inputs"]["input_ids"], scores, output["offset_mapping"],
                output["special_tokens_mask"], aggregation_strategy, output.get("word_ids"), word_spans)
            entities.extend(entity for entity in self.aggregate(pre_entities, aggregation_strategy)
                            if entity.get("entity") not in ignore_labels
                            and entity.get("entity_group") not in ignore_labels)
        if len(all_outputs) > 1:
            entities = self.aggregate_overlapping_entities(entities)
        return entities

    def aggregate_overlapping_entities(self, entities):
        """Of entities that overlap (from overlapping chunks), keep the longest, then the most confident."""
        if not entities:
            return entities
        entities = sorted(entities, key=lambda entity: entity["start"])
        kept, previous = [], entities[0]
        for entity in entities:
            if previous["start"] <= entity["start"] < previous["end"]:
                length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
                if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                    previous = entity
            else:
                kept.append(previous)
                previous = entity
        kept.append(previous)
        return kept

    def _is_subword(self, word, word_ref, sentence, start, strategy) -> bool:
        if getattr(getattr(self.tokenizer, "_tokenizer", None), "model", None) is not None and \
                getattr(self.tokenizer._tokenizer.model, "continuing_subword_prefix", None):
            return len(word) != len(word_ref)
        if strategy in _WORD_LEVEL:
            warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning)
        return start > 0 and " " not in sentence[start - 1:start + 1]

    def gather_pre_entities(self, sentence, input_ids, scores, offset_mapping, special_tokens_mask,
                            aggregation_strategy, word_ids=None, word_to_chars_map=None) -> list[dict]:
        """One entry per non-special token: its text, scores, character span and whether it continues a word."""
        pre_entities = []
        for index, token_scores in enumerate(scores):
            if special_tokens_mask[index]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(int(input_ids[index]))
            if offset_mapping is not None:
                start, end = (int(value) for value in offset_mapping[index])
                if word_ids is not None and word_to_chars_map is not None and word_ids[index] is not None:
                    word_start = word_to_chars_map[word_ids[index]][0]
                    start, end = start + word_start, end + word_start
                word_ref = sentence[start:end]
                is_subword = self._is_subword(word, word_ref, sentence, start, aggregation_strategy)
                if int(input_ids[index]) == self.tokenizer.unk_token_id:
                    word, is_subword = word_ref, False
            else:
                start = end = None
                is_subword = False
            pre_entities.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": index,
                                 "is_subword": is_subword})
        return pre_entities

    def aggregate(self, pre_entities: list[dict], aggregation_strategy) -> list[dict]:
        if aggregation_strategy in (AggregationStrategy.NONE, AggregationStrategy.SIMPLE):
            entities = []
            for pre in pre_entities:
                label = pre["scores"].argmax()
                entities.append({"entity": self.model.config.id2label[label], "score": pre["scores"][label],
                                 "index": pre["index"], "word": pre["word"], "start": pre["start"],
                                 "end": pre["end"]})
        else:
            entities = self.aggregate_words(pre_entities, aggregation_strategy)
        if aggregation_strategy == AggregationStrategy.NONE:
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities: list[dict], aggregation_strategy) -> dict:
        """The tokens of one word -> one entry, labelled by the strategy."""
        word = self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities])
        if aggregation_strategy == AggregationStrategy.FIRST:
            scores = entities[0]["scores"]
        elif aggregation_strategy == AggregationStrategy.MAX:
            scores = max(entities, key=lambda entity: entity["scores"].max())["scores"]
        elif aggregation_strategy == AggregationStrategy.AVERAGE:
            scores = np.nanmean(np.stack([entity["scores"] for entity in entities]), axis=0)
        else:
            raise PipelineInputError(f"aggregation_strategy {aggregation_strategy} does not merge words.")
        label = scores.argmax()
        return {"entity": self.model.config.id2label[label], "score": scores[label], "word": word,
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def aggregate_words(self, entities: list[dict], aggregation_strategy) -> list[dict]:
        """Tokens -> words: a token marked as a subword joins the word before it."""
        if aggregation_strategy in (AggregationStrategy.NONE, AggregationStrategy.SIMPLE):
            raise PipelineInputError("none and simple do not merge tokens into words.")
        words, group = [], None
        for entity in entities:
            if group is None:
                group = [entity]
            elif entity["is_subword"]:
                group.append(entity)
            else:
                words.append(self.aggregate_word(group, aggregation_strategy))
                group = [entity]
        if group is not None:
            words.append(self.aggregate_word(group, aggregation_strategy))
        return words

    def group_sub_entities(self, entities: list[dict]) -> dict:
        """Adjacent entries of one entity -> {"entity_group", "score" (mean), "word", "start", "end"}."""
        entity_type = entities[0]["entity"].split("-", 1)[-1]
        scores = np.nanmean([entity["score"] for entity in entities])
        return {"entity_group": entity_type, "score": np.mean(scores),
                "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    @staticmethod
    def get_tag(entity_name: str) -> tuple[str, str]:
        """("B" or "I", entity type) of a BIO label; a label without a prefix counts as "I"."""
        if entity_name.startswith(("B-", "I-")):
            return entity_name[0], entity_name[2:]
        return "I", entity_name

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """Merge neighbours of the same entity type, starting a new group at each B- label."""
        groups, current = [], []
        for entity in entities:
            if not current:
                current.append(entity)
                continue
            bi, tag = self.get_tag(entity["entity"])
            _, last_tag = self.get_tag(current[-1]["entity"])
            if tag == last_tag and bi != "B":
                current.append(entity)
            else:
                groups.append(self.group_sub_entities(current))
                current = [entity]
        if current:
            groups.append(self.group_sub_entities(current))
        return groups


NerPipeline = TokenClassificationPipeline
