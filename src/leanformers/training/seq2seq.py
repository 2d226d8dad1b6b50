"""Seq2SeqTrainer: a Trainer whose evaluation can score generated sequences (`predict_with_generate=True`)."""

from __future__ import annotations

import contextlib
import copy

import torch

from ..errors import ConfigError
from .trainer import Trainer


class Seq2SeqTrainer(Trainer):
    """Trainer for generation tasks. With `args.predict_with_generate`, evaluate()/predict() call model.generate()
    and hand the generated token ids (padded to the generation length) to compute_metrics."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = getattr(self.args, "generation_config", None)
        if config is not None:
            self.model.generation_config = self._load_generation_config(config)

    @staticmethod
    def _load_generation_config(config):
        from ..generation import GenerationConfig

        if isinstance(config, GenerationConfig):
            return copy.deepcopy(config)
        return GenerationConfig.from_pretrained(config)

    def _generation_kwargs(self, gen_kwargs: dict) -> dict:
        gen_kwargs = dict(gen_kwargs)
        max_length = getattr(self.args, "generation_max_length", None)
        if gen_kwargs.get("max_length") is None and gen_kwargs.get("max_new_tokens") is None and max_length:
            gen_kwargs["max_length"] = max_length
        num_beams = getattr(self.args, "generation_num_beams", None)
        if gen_kwargs.get("num_beams") is None and num_beams is not None:
            gen_kwargs["num_beams"] = num_beams
        return gen_kwargs

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        self._gen_kwargs = self._generation_kwargs(gen_kwargs)
        with self._full_batch_loss_weights():
            return super().evaluate(eval_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", **gen_kwargs):
        self._gen_kwargs = self._generation_kwargs(gen_kwargs)
        with self._full_batch_loss_weights():
            return super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)

    @contextlib.contextmanager
    def _full_batch_loss_weights(self):
        # Transformers' Seq2SeqTrainer counts a short last batch as a full one in the mean loss; same numbers here
        self._loss_weight_is_batch_size = True
        try:
            yield
        finally:
            self._loss_weight_is_batch_size = False

    def prediction_step(self, model, inputs, prediction_loss_only: bool, ignore_keys=None, **gen_kwargs):
        """(loss, generated ids, labels padded to the same length) when predicting with generate."""
        if not getattr(self.args, "predict_with_generate", False) or prediction_loss_only:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        has_labels = inputs.get("labels") is not None
        inputs = self._prepare_inputs(inputs)
        gen_kwargs = {k: v for k, v in (gen_kwargs or getattr(self, "_gen_kwargs", {})).items() if v is not None}
        # the targets are not generation inputs; drop decoder inputs built from them too
        generation_inputs = {k: v for k, v in inputs.items()
                             if k not in ("labels", "decoder_input_ids", "decoder_attention_mask")}
        generator = self.model
        generated = generator.generate(**generation_inputs, **gen_kwargs)
        target_length = self._target_length(generator, gen_kwargs, generated.shape[-1])
        if generated.shape[-1] < target_length:
            generated = self._pad_tensors_to_max_len(generated, target_length)
        loss = None
        if has_labels:
            with torch.no_grad(), self.compute_loss_context_manager():
                outputs = model(**inputs)
            loss = (self.label_smoother(outputs, inputs["labels"]) if self.label_smoother is not None
                    else outputs["loss"] if isinstance(outputs, dict) else outputs[0]).detach().mean()
        if self.args.prediction_loss_only:
            return loss, None, None
        labels = None
        if has_labels:
            labels = inputs["labels"]
            if labels.shape[-1] < target_length:
                labels = self._pad_tensors_to_max_len(labels, target_length)
        return loss, generated, labels

    @staticmethod
    def _target_length(model, gen_kwargs, generated_length: int) -> int:
        """The length generations (and labels) are padded to: the model's generation max_length (20 unless set),
        or max_new_tokens + 1, as Transformers does, so that every batch concatenates."""
        config = getattr(model, "generation_config", None)
        max_length = getattr(config, "max_length", None) or 20
        max_new_tokens = getattr(config, "max_new_tokens", None)
        if generated_length < max_length:
            return max_length
        if max_new_tokens is not None and generated_length < max_new_tokens + 1:
            return max_new_tokens + 1
        return generated_length

    def _pad_tensors_to_max_len(self, tensor, max_length: int):
        tokenizer = self.processing_class
        if tokenizer is not None and hasattr(tokenizer, "pad_token_id"):
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        else:
            pad_id = getattr(self.model.config, "pad_token_id", None)
        if pad_id is None:
            raise ConfigError("Padding generated sequences needs a pad token: set tokenizer.pad_token or "
                              "model.config.pad_token_id.")
        padded = torch.full((tensor.shape[0], max_length), pad_id, dtype=tensor.dtype, device=tensor.device)
        padded[:, : tensor.shape[-1]] = tensor
        return padded
