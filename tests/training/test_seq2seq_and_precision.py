"""Seq2SeqTrainer's generate-based evaluation, and bf16 autocast on CPU against the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from .conftest import causal_data, classification_data, default_args, run_trainer, step_logs


def test_seq2seq_trainer_matches_reference(tmp_path):
    """A tiny BART: training losses, generate-based evaluation (padded generations, a ragged last batch) and
    predictions equal the reference Seq2SeqTrainer's."""
    import transformers

    import leanformers

    from .conftest import save_reference_model

    folder = tmp_path / "bart"
    save_reference_model("BartForConditionalGeneration", "BartConfig", folder, vocab_size=99, d_model=32,
                         encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                         encoder_ffn_dim=37, decoder_ffn_dim=37, max_position_embeddings=64, pad_token_id=1,
                         bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=None)
    g = torch.Generator().manual_seed(1)
    data = [{"input_ids": torch.randint(3, 99, (8,), generator=g).tolist() + [2],
             "labels": torch.randint(3, 99, (5,), generator=g).tolist() + [2]} for _ in range(24)]
    results = {}
    for name, lib in (("ours", leanformers), ("reference", transformers)):
        model = lib.AutoModelForSeq2SeqLM.from_pretrained(folder)
        args = lib.Seq2SeqTrainingArguments(**default_args(tmp_path / name, max_steps=4),
                                            predict_with_generate=True, generation_max_length=10)
        trainer = lib.Seq2SeqTrainer(model=model, args=args, train_dataset=data, eval_dataset=data[:6],
                                     compute_metrics=lambda p: {"token_sum": float(p.predictions.sum())})
        trainer.train()
        results[name] = (step_logs(trainer), trainer.evaluate(), trainer.predict(data[:5]))
    (logs, metrics, prediction), (ref_logs, ref_metrics, ref_prediction) = results["ours"], results["reference"]
    assert [h["loss"] for h in logs] == pytest.approx([h["loss"] for h in ref_logs], abs=1e-5)
    assert metrics["eval_loss"] == pytest.approx(ref_metrics["eval_loss"], abs=1e-5)
    assert metrics["eval_token_sum"] == ref_metrics["eval_token_sum"]
    np.testing.assert_array_equal(prediction.predictions, ref_prediction.predictions)
    np.testing.assert_array_equal(prediction.label_ids, ref_prediction.label_ids)


def test_predict_with_generate_returns_generated_ids(tiny_gpt2_dir, tmp_path):
    import leanformers

    model = leanformers.AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir)
    model.config.pad_token_id = 0
    prompts = [{"input_ids": row["input_ids"][:6], "labels": row["input_ids"][:6]} for row in causal_data(5, seed=4)]
    seen = {}

    def metrics(prediction):
        seen["shape"] = prediction.predictions.shape
        return {"first_token": float(prediction.predictions[0, 6])}

    args = leanformers.Seq2SeqTrainingArguments(**default_args(tmp_path, per_device_eval_batch_size=2),
                                                predict_with_generate=True, generation_max_length=14)
    trainer = leanformers.Seq2SeqTrainer(model=model, args=args, compute_metrics=metrics)
    output = trainer.predict(prompts)
    expected = model.generate(torch.tensor([p["input_ids"] for p in prompts]), max_length=14, do_sample=False)
    # padded (with the pad id) to the model's generation max_length, 20 by default, as Transformers does
    assert expected.shape == (5, 14) and output.predictions.shape == seen["shape"] == (5, 20)
    np.testing.assert_array_equal(output.predictions[:, :14], expected.numpy())
    assert (output.predictions[:, 14:] == 0).all()
    assert output.metrics["test_first_token"] == float(expected[0, 6])
    ids = torch.tensor([p["input_ids"] for p in prompts])
    with torch.no_grad():  # like the reference: each batch's own mean loss, the short last batch counted as full
        batch_losses = [model(input_ids=ids[i:i + 2], labels=ids[i:i + 2]).loss.item() for i in (0, 2, 4)]
    assert output.metrics["test_loss"] == pytest.approx(sum(batch_losses) / 3, abs=1e-6)
    shorter = trainer.predict(prompts, max_new_tokens=3).predictions
    np.testing.assert_array_equal(shorter[:, :9], expected[:, :9].numpy())
    assert (shorter[:, 9:] == 0).all()


def test_bf16_autocast_on_cpu_matches_reference(tiny_bert_dir, tmp_path):
    train = classification_data(16, seed=7)
    args = default_args(tmp_path, max_steps=3, bf16=True, use_cpu=True)
    runs = {lib: run_trainer(lib, tiny_bert_dir, train, args) for lib in ("reference", "ours")}
    ours, theirs = step_logs(runs["ours"]), step_logs(runs["reference"])
    assert [h["loss"] for h in ours] == pytest.approx([h["loss"] for h in theirs], abs=1e-3)
    # autocast changed the numbers: bf16 and fp32 runs differ
    fp32 = step_logs(run_trainer("ours", tiny_bert_dir, train, {**args, "bf16": False}))
    assert [h["loss"] for h in fp32] != [h["loss"] for h in ours]


def test_grad_scaler_steps_skips_and_resumes_on_cpu(tiny_bert_dir, tmp_path):
    """The fp16 loss-scaling path of the loop, driven by a CPU GradScaler (fp16 itself needs CUDA): scaling by a
    power of two leaves the weights as in an unscaled run; a step with non-finite gradients is skipped (weights and
    schedule unchanged, scale halved), as Transformers does; the scale is checkpointed and restored on resume."""
    import leanformers

    train = classification_data(16, seed=12)
    settings = default_args(tmp_path / "plain", max_steps=3, warmup_steps=1, save_strategy="steps", save_steps=1)
    start_scale = 2.0 ** 10

    class Scaled(leanformers.Trainer):
        poison_step = None  # optimiser step whose loss is made non-finite

        def _create_grad_scaler(self):
            return torch.amp.GradScaler("cpu", init_scale=start_scale)

        def compute_loss(self, model, inputs, **kwargs):
            loss = super().compute_loss(model, inputs, **kwargs)
            return loss * float("inf") if self.state.global_step == self.poison_step else loss

    class Snapshots(leanformers.TrainerCallback):
        def __init__(self):
            self.weights = []

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    def run(trainer_class, folder, poison=None, resume=None):
        snapshots = Snapshots()
        model = leanformers.AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
        trainer = trainer_class(model=model, args=leanformers.TrainingArguments(**{**settings, "output_dir": folder}),
                                train_dataset=train, callbacks=[snapshots])
        trainer.poison_step = poison
        trainer.train(resume_from_checkpoint=resume)
        return trainer, snapshots.weights

    plain, plain_weights = run(leanformers.Trainer, str(tmp_path / "plain"))
    scaled, scaled_weights = run(Scaled, str(tmp_path / "scaled"))
    assert plain.scaler is None and scaled.scaler.get_scale() == start_scale
    for mine, ref in zip(scaled_weights, plain_weights):
        for key in ref:
            torch.testing.assert_close(mine[key], ref[key], atol=1e-6, rtol=1e-5, msg=key)
    assert [h["learning_rate"] for h in step_logs(scaled)] == [h["learning_rate"] for h in step_logs(plain)]

    skipped, weights = run(Scaled, str(tmp_path / "skipped"), poison=1)
    assert skipped.state.global_step == 3 and skipped.scaler.get_scale() == start_scale / 2
    for key in weights[0]:
        assert torch.equal(weights[1][key], weights[0][key]), key  # the poisoned step changed nothing
    assert skipped.lr_scheduler.last_epoch == 2  # the skipped step did not advance the schedule
    rates = [h["learning_rate"] for h in step_logs(skipped)]
    plain_rates = [h["learning_rate"] for h in step_logs(plain)]
    assert rates[:2] == plain_rates[:2] and rates[2] == rates[1] != plain_rates[2]  # the rate of each step taken
    saved = torch.load(tmp_path / "skipped" / "checkpoint-2" / "scaler.pt", weights_only=True)
    assert saved["scale"] == start_scale / 2

    resumed, _ = run(Scaled, str(tmp_path / "skipped"), resume=str(tmp_path / "skipped" / "checkpoint-2"))
    assert resumed.scaler.get_scale() == start_scale / 2
    for key, value in skipped.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
