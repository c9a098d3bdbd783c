"""The training loop: schedule, optimizer groups, determinism, exact resumption, checkpoints
that refuse bad files, gradient accumulation, and DDP with two processes under torchrun."""
import dataclasses
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bertedu import BertConfig, BertForPreTraining, BertForSequenceClassification, pooling
from bertedu.pretraining import PretrainingDataset, create_nsp_examples, pretraining_loss
from bertedu.tokenization import BertTokenizer
from bertedu import training
from bertedu.training import (CHECKPOINT_NAME, CHECKSUM_LINE_LENGTH, PREVIOUS_CHECKPOINT_NAME, History,
                              TrainingConfig, batch_indices,
                              derive_seed, layer_depth, layerwise_lr_groups, load_checkpoint, lr_at,
                              make_optimizer, read_checkpoint,
                              save_checkpoint, set_seed, train)

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import build_run  # noqa: E402  (the same run the torchrun test launches)
from tiny_vocab_bert import small_tokenizer, tiny_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def pretraining_setup(dropout=0.1, n_docs=16, seed=0):
    """A tiny BERT, and NSP + MLM data with dynamic masks over a random corpus."""
    tokenizer = BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(50)])
    rng = random.Random(seed)
    documents = [[[rng.randrange(5, tokenizer.vocab_size) for _ in range(rng.randint(2, 9))]
                  for _ in range(rng.randint(2, 8))] for _ in range(n_docs)]
    dataset = PretrainingDataset(create_nsp_examples(documents, 24, seed=seed), tokenizer, "dynamic", seed=seed)
    set_seed(seed)
    model = BertForPreTraining(BertConfig.tiny(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=24, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))
    return model, dataset


def run(model, dataset, **settings):
    config = TrainingConfig(**{"max_steps": 6, "batch_size": 8, "learning_rate": 1e-3, "warmup_steps": 2,
                               "progress_bar": False, **settings})
    return train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss)


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


# ---------------------------------------------------------------------------------------
# Schedule, optimizer, batches
# ---------------------------------------------------------------------------------------
def test_lr_warms_up_linearly_then_decays_linearly_to_zero():
    lrs = [lr_at(step, 1e-3, warmup_steps=4, max_steps=20) for step in range(21)]
    assert lrs[:5] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3])
    assert lrs[12] == pytest.approx(1e-3 * 8 / 16)
    assert lrs[19] == pytest.approx(1e-3 / 16)
    assert lrs[20] == 0.0
    assert [lr_at(s, 1.0, 0, 10) for s in (0, 5, 9)] == pytest.approx([1.0, 0.5, 0.1])


def test_weight_decay_skips_biases_and_layernorm():
    model, _ = pretraining_setup()
    optimizer = make_optimizer(model, TrainingConfig(weight_decay=0.01))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    not_decayed = {names[id(p)] for p in no_decay["params"]}
    assert not decayed & not_decayed
    assert decayed | not_decayed == set(names.values())  # every parameter once (tied decoder too)
    assert all(n.endswith("bias") or "LayerNorm" in n for n in not_decayed)
    assert not any(n.endswith("bias") or "LayerNorm" in n for n in decayed)
    assert "bert.encoder.layer.0.attention.self.query.weight" in decayed
    assert "bert.embeddings.word_embeddings.weight" in decayed


def test_batches_are_a_fresh_permutation_every_epoch():
    epoch0 = [batch_indices(step, 10, 3, seed=0) for step in range(3)]
    epoch1 = [batch_indices(step, 10, 3, seed=0) for step in range(3, 6)]
    assert [e for _, e in epoch0] == [0, 0, 0] and [e for _, e in epoch1] == [1, 1, 1]
    seen0 = [i for batch, _ in epoch0 for i in batch]
    assert len(set(seen0)) == 9 and set(seen0) <= set(range(10))  # the 10th waits for its turn
    assert seen0 != [i for batch, _ in epoch1 for i in batch]
    assert batch_indices(4, 10, 3, seed=0) == epoch1[1]  # a function of the step alone
    assert batch_indices(0, 10, 3, seed=1) != epoch0[0]
    with pytest.raises(ValueError, match="fewer than batch_size"):
        batch_indices(0, 2, 3, seed=0)


def test_derive_seed_separates_its_inputs():
    assert derive_seed(0, 1) != derive_seed(1, 0)
    assert derive_seed(5, 2, 7) == derive_seed(5, 2, 7)


# ---------------------------------------------------------------------------------------
# Determinism and exact resumption
# ---------------------------------------------------------------------------------------
def test_same_seed_same_losses_different_seed_different_losses():
    first = run(*pretraining_setup(dropout=0.1), seed=0)
    second = run(*pretraining_setup(dropout=0.1), seed=0)
    other = run(*pretraining_setup(dropout=0.1), seed=1)
    assert first.losses == second.losses  # identical, not merely close
    assert first.losses != other.losses
    assert first.steps == list(range(1, 7))
    assert all(math.isfinite(x) for x in first.losses)


class Crash(Exception):
    pass


def crash_after(collate, calls: int):
    """The collate function, until it has been called `calls` times: then the run dies."""
    count = 0

    def collate_or_crash(items):
        nonlocal count
        count += 1
        if count > calls:
            raise Crash(f"simulated crash at collate call {count}")
        return collate(items)
    return collate_or_crash


def test_resumed_run_ends_equal_to_an_uninterrupted_one(tmp_path):
    # dropout on, dynamic masks, 2 micro-batches a step, several epochs: every random
    # source must be restored for the two runs to agree
    config = TrainingConfig(max_steps=9, batch_size=8, gradient_accumulation_steps=2, seed=3, learning_rate=1e-3,
                            warmup_steps=2, progress_bar=False, output_dir=str(tmp_path), save_every=4)
    straight_model, dataset = pretraining_setup(dropout=0.1)
    assert len(dataset) // 8 < 9  # the run crosses epoch boundaries
    straight = train(straight_model, dataset, dataclasses.replace(config, output_dir=None, save_every=None),
                     collate_fn=dataset.collate, loss_fn=pretraining_loss)

    model, dataset = pretraining_setup(dropout=0.1)
    with pytest.raises(Crash):  # dies during step 6, after the checkpoint of step 4
        train(model, dataset, config, collate_fn=crash_after(dataset.collate, 2 * 5), loss_fn=pretraining_loss)
    assert read_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == 4

    resumed_model, dataset = pretraining_setup(dropout=0.1)
    with torch.no_grad():  # another starting point: everything must come from the checkpoint
        for p in resumed_model.parameters():
            p.add_(1.0)
    torch.manual_seed(12345)  # and another random state
    resumed = train(resumed_model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
                    resume_from=tmp_path / CHECKPOINT_NAME)
    assert resumed.losses == straight.losses
    assert max_difference(resumed_model.state_dict(), straight_model.state_dict()) == 0.0


def test_resume_refuses_changed_settings(tmp_path):
    model, dataset = pretraining_setup()
    run(model, dataset, output_dir=str(tmp_path))
    model, dataset = pretraining_setup()
    config = TrainingConfig(max_steps=6, batch_size=8, learning_rate=1e-3, warmup_steps=2, seed=1,
                            progress_bar=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="seed"):
        train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss, resume_from=tmp_path)
    after = model.state_dict()  # the refused resume left the caller's model as it was
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_evaluation_runs_on_schedule_and_does_not_disturb_training():
    def noisy_metric(model):  # consumes random numbers, as a sampling metric would
        torch.rand(100)
        random.random()
        return {"answer": torch.tensor(42.0), "calls": len(calls)}

    calls = []
    model, dataset = pretraining_setup(dropout=0.1)
    config = TrainingConfig(max_steps=7, batch_size=8, learning_rate=1e-3, eval_every=3, progress_bar=False)
    with_eval = train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
                      eval_fn=lambda m, step: (calls.append((step, m.training)), noisy_metric(m))[1])
    assert [r["step"] for r in with_eval.eval] == [3, 6, 7]
    assert calls == [(3, False), (6, False), (7, False)]  # told the step, in eval mode
    assert with_eval.metric("answer") == ([3, 6, 7], [42.0, 42.0, 42.0])
    with pytest.raises(KeyError, match="answer"):
        with_eval.metric("accuracy")
    model, dataset = pretraining_setup(dropout=0.1)
    without = train(model, dataset, dataclasses.replace(config, eval_every=None), collate_fn=dataset.collate,
                    loss_fn=pretraining_loss)
    assert with_eval.losses == without.losses


def test_history_records_every_step():
    model, dataset = pretraining_setup()
    history = run(model, dataset)
    assert isinstance(history, History)
    assert [r["step"] for r in history.train] == [1, 2, 3, 4, 5, 6]
    assert [r["lr"] for r in history.train] == pytest.approx([lr_at(s, 1e-3, 2, 6) for s in range(6)])
    assert all(r["tokens"] > 0 and r["grad_norm"] > 0 for r in history.train)
    seconds = [r["seconds"] for r in history.train]
    assert seconds == sorted(seconds)


# ---------------------------------------------------------------------------------------
# Gradient accumulation and DDP
# ---------------------------------------------------------------------------------------
class FixedLengthDataset:
    """Sentence-classification examples of equal length: every micro-batch has the same
    number of examples, so the mean of micro-batch means is the mean over the batch."""

    def __init__(self, n=24, length=12, vocab_size=40):
        g = torch.Generator().manual_seed(0)
        self.input_ids = torch.randint(5, vocab_size, (n, length), generator=g)
        self.labels = torch.randint(0, 3, (n,), generator=g)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}

    @staticmethod
    def collate(items):
        return {k: torch.stack([item[k] for item in items]) for k in items[0]}


@pytest.mark.parametrize("accumulation", [2, 4])
def test_gradient_accumulation_equals_the_whole_batch_at_once(accumulation):
    results = []
    for steps in (1, accumulation):
        set_seed(0)
        model = BertForSequenceClassification(BertConfig.tiny(
            vocab_size=40, hidden_size=32, num_attention_heads=2, intermediate_size=64, num_labels=3,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
        dataset = FixedLengthDataset()
        # fp32: the identity is exact arithmetic; bf16 rounds a batch of 8 and two of 4 differently
        history = train(model, dataset, TrainingConfig(max_steps=4, batch_size=8, gradient_accumulation_steps=steps,
                                                       learning_rate=1e-3, progress_bar=False,
                                                       mixed_precision=False),
                        collate_fn=dataset.collate)
        results.append((model.state_dict(), history.losses))
    assert max_difference(results[0][0], results[1][0]) < 1e-6
    assert results[0][1] == pytest.approx(results[1][1], abs=1e-6)


def test_ddp_two_processes_equal_one_process_on_the_same_global_batch(tmp_path):
    # 2 processes x 4 examples (gloo on CPU) against 1 process x 2 micro-batches of 4: the
    # same examples in the same groups, so the updates must agree
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO / "tests" / "ddp_worker.py"), str(tmp_path)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ddp = torch.load(tmp_path / "result.pt", weights_only=True)
    assert ddp["world_size"] == 2
    assert len(read_checkpoint(tmp_path / "run")["rng"]) == 2  # both processes' generators saved

    model, dataset, config = build_run(gradient_accumulation_steps=2)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each DDP process: a matrix product's sums depend on the thread count
    try:
        single = train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss)
    finally:
        torch.set_num_threads(threads)
    assert max_difference(model.state_dict(), ddp["state"]) <= 1e-6
    assert max_difference(initial, ddp["state"]) > 1e-3  # and training did move the weights
    assert single.losses == pytest.approx(ddp["losses"], abs=1e-6)


# ---------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------
def checkpointed(tmp_path):
    model, dataset = pretraining_setup()
    run(model, dataset, max_steps=2, output_dir=str(tmp_path))
    return model, tmp_path / CHECKPOINT_NAME


def test_checkpoint_holds_the_whole_state(tmp_path):
    model, path = checkpointed(tmp_path)
    state = read_checkpoint(path)
    assert state["step"] == 2
    assert state["optimizer"]["state"]  # AdamW moments
    assert {"python", "torch"} <= set(state["rng"][0])
    assert [r["step"] for r in state["history"]["train"]] == [1, 2]
    assert state["config"]["batch_size"] == 8
    assert max_difference(state["model"], model.state_dict()) == 0.0
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temporary file left


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, path = checkpointed(tmp_path)
    before = path.read_bytes()

    def save_half_then_fail(obj, f):
        f.write(before[: len(before) // 2])
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    optimizer = make_optimizer(model, TrainingConfig())
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, model, optimizer, 3, History(), TrainingConfig())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]
    assert read_checkpoint(path)["step"] == 2


def test_truncated_checkpoint_is_refused_and_nothing_is_loaded(tmp_path):
    _, path = checkpointed(tmp_path)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:-2000])
    model, _ = pretraining_setup(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="truncated"):
        load_checkpoint(truncated, model)
    assert max_difference(before, model.state_dict()) == 0.0
    assert read_checkpoint(path)["step"] == 2  # the good one is untouched


def flip_byte(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_anywhere_is_detected(tmp_path):
    _, path = checkpointed(tmp_path)
    good = path.read_bytes()
    state = read_checkpoint(path)
    embeddings = state["model"]["bert.embeddings.word_embeddings.weight"].numpy().tobytes()
    in_a_tensor = good.index(embeddings) + 101
    # the checksum line, the first byte after it, a weight, the zip directory at the end...
    positions = [0, 20, CHECKSUM_LINE_LENGTH - 2, CHECKSUM_LINE_LENGTH, in_a_tensor, len(good) - 1]
    positions += range(CHECKSUM_LINE_LENGTH + 7, len(good), len(good) // 25)  # ... and 25 more
    damaged = tmp_path / "damaged.pt"
    for position in positions:
        damaged.write_bytes(good)
        flip_byte(damaged, position)
        with pytest.raises(ValueError, match=f"{damaged.name} (is damaged|cannot be read)"):
            read_checkpoint(damaged)

    # without the checksum, torch itself reads the damaged weight without a word
    damaged.write_bytes(good)
    flip_byte(damaged, in_a_tensor)
    with open(damaged, "rb") as file:
        file.seek(CHECKSUM_LINE_LENGTH)
        silently_wrong = torch.load(file, weights_only=True)["model"]["bert.embeddings.word_embeddings.weight"]
    assert not torch.equal(silently_wrong, state["model"]["bert.embeddings.word_embeddings.weight"])


@pytest.mark.parametrize("keep", [10, CHECKSUM_LINE_LENGTH, CHECKSUM_LINE_LENGTH + 100, 0.5, -1])
def test_a_truncated_checkpoint_is_detected(tmp_path, keep):
    _, path = checkpointed(tmp_path)
    data = path.read_bytes()
    length = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    path.write_bytes(data[:length])
    with pytest.raises(ValueError, match="truncated"):
        read_checkpoint(path)


def test_each_save_keeps_the_one_before(tmp_path):
    run(*pretraining_setup(), max_steps=6, output_dir=str(tmp_path), save_every=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME])
    assert read_checkpoint(tmp_path / CHECKPOINT_NAME)["step"] == 6
    assert read_checkpoint(tmp_path / PREVIOUS_CHECKPOINT_NAME)["step"] == 4


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_and_the_run_still_ends_exact(tmp_path):
    whole = run(*pretraining_setup(), max_steps=6)
    model, dataset = pretraining_setup()
    run(model, dataset, max_steps=6, stop_after=4, output_dir=str(tmp_path), save_every=2)
    flip_byte(tmp_path / CHECKPOINT_NAME, 5000)  # the save of step 4; step 2's is the previous one

    with pytest.warns(UserWarning, match=r"checkpoint.pt is damaged(.|\n)*Falling back to the previous "
                                         r"checkpoint, .*checkpoint.previous.pt"):
        assert read_checkpoint(tmp_path)["step"] == 2
    model, dataset = pretraining_setup(seed=0)
    config = TrainingConfig(max_steps=6, batch_size=8, learning_rate=1e-3, warmup_steps=2, progress_bar=False)
    with pytest.warns(UserWarning, match="Falling back"):
        resumed = train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
                        resume_from=tmp_path)
    assert resumed.losses == whole.losses


def test_a_damaged_checkpoint_given_by_name_is_refused_and_the_previous_one_named(tmp_path):
    run(*pretraining_setup(), max_steps=4, output_dir=str(tmp_path), save_every=2)
    flip_byte(tmp_path / CHECKPOINT_NAME, 5000)
    model, _ = pretraining_setup(seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as error:
        load_checkpoint(tmp_path / CHECKPOINT_NAME, model)
    message = str(error.value)
    assert f"{tmp_path / CHECKPOINT_NAME} is damaged" in message
    assert f"A previous checkpoint exists at {tmp_path / PREVIOUS_CHECKPOINT_NAME}" in message
    assert max_difference(before, model.state_dict()) == 0.0  # nothing was copied


def test_a_save_killed_between_its_two_renames_falls_back_to_the_previous(tmp_path):
    run(*pretraining_setup(), max_steps=4, output_dir=str(tmp_path), save_every=2)
    # the moment after checkpoint.pt became checkpoint.previous.pt, before the new file took its name
    (tmp_path / CHECKPOINT_NAME).replace(tmp_path / PREVIOUS_CHECKPOINT_NAME)
    with pytest.warns(UserWarning, match="no training checkpoint at"):
        assert read_checkpoint(tmp_path)["step"] == 4
    with pytest.raises(FileNotFoundError, match="A previous checkpoint exists at"):
        read_checkpoint(tmp_path / CHECKPOINT_NAME)


def test_a_checkpoint_without_checksum_loads_with_a_warning(tmp_path):
    model, path = checkpointed(tmp_path)
    older = tmp_path / "older.pt"  # the layout bertedu wrote before checksums: torch.save alone
    older.write_bytes(path.read_bytes()[CHECKSUM_LINE_LENGTH:])
    with pytest.warns(UserWarning, match="older.pt has no checksum"):
        state = load_checkpoint(older, model)
    assert state["step"] == 2


def test_a_save_removes_temporary_files_of_killed_saves(tmp_path):
    model, path = checkpointed(tmp_path)
    (tmp_path / f".{CHECKPOINT_NAME}.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    save_checkpoint(path, model, make_optimizer(model, TrainingConfig()), 3, History(), TrainingConfig())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT_NAME, PREVIOUS_CHECKPOINT_NAME])


@pytest.mark.parametrize("kind", ["state_dict", "safetensors", "text"])
def test_foreign_files_are_refused(tmp_path, kind):
    model, _ = pretraining_setup()
    path = tmp_path / "foreign.pt"
    if kind == "state_dict":
        torch.save(model.state_dict(), path)
    elif kind == "safetensors":
        model.save_pretrained(tmp_path / "hf")
        path = tmp_path / "hf" / "model.safetensors"
    else:
        path.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match="not a bertedu training checkpoint|cannot be read"):
        load_checkpoint(path, model)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    _, path = checkpointed(tmp_path)
    other = BertForPreTraining(BertConfig.tiny(vocab_size=55, hidden_size=64, num_attention_heads=2,
                                               intermediate_size=64, max_position_embeddings=24))
    with pytest.raises(ValueError, match="different model"):
        load_checkpoint(path, other)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", other)


# ---------------------------------------------------------------------------------------
# Settings and bad input
# ---------------------------------------------------------------------------------------
def test_optimizer_is_fused_adamw():
    model, _ = pretraining_setup()
    optimizer = make_optimizer(model, TrainingConfig())
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True


def test_bf16_training_stays_close_to_fp32():
    fp32 = run(*pretraining_setup(dropout=0.0), max_steps=2, mixed_precision=False)
    bf16 = run(*pretraining_setup(dropout=0.0), max_steps=2, mixed_precision=True)
    assert all(math.isfinite(x) for x in bf16.losses)
    assert bf16.losses[0] == pytest.approx(fp32.losses[0], abs=0.05)
    assert bf16.losses[0] != fp32.losses[0]  # bf16 arithmetic did run


def test_stop_after_ends_early_on_the_same_schedule_and_resume_finishes_the_run(tmp_path):
    whole = run(*pretraining_setup(dropout=0.0), max_steps=6)
    model, dataset = pretraining_setup(dropout=0.0)
    first = run(model, dataset, max_steps=6, stop_after=4, output_dir=str(tmp_path), save_every=2)
    assert first.losses == whole.losses[:4]
    assert [r["lr"] for r in first.train] == [r["lr"] for r in whole.train[:4]]
    config = TrainingConfig(max_steps=6, batch_size=8, learning_rate=1e-3, warmup_steps=2, progress_bar=False,
                            output_dir=str(tmp_path), save_every=2)
    resumed = train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
                    resume_from=tmp_path / CHECKPOINT_NAME)
    assert resumed.losses == whole.losses
    with pytest.raises(ValueError, match="stop_after"):
        TrainingConfig(max_steps=6, stop_after=7)


@pytest.mark.parametrize("settings, message", [
    (dict(max_steps=0), "max_steps"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(warmup_steps=20, max_steps=10), "warmup_steps"),
    (dict(learning_rate=0.0), "learning_rate"),
    (dict(save_every=5), "output_dir"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
    (dict(learning_rate="1e-4"), "learning_rate must be a finite number"),
    (dict(learning_rate=float("inf")), "learning_rate must be a finite number"),
    (dict(weight_decay="0.01"), "weight_decay must be a finite number"),
    (dict(adam_beta1=1.5), r"adam_beta1 must be in \[0, 1\)"),
    (dict(adam_epsilon=-1.0), "adam_epsilon must be > 0"),
    (dict(max_grad_norm="1"), "max_grad_norm must be a number > 0"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**settings)


def test_train_refuses_batches_that_do_not_divide_or_do_not_fit():
    model, dataset = pretraining_setup()
    with pytest.raises(ValueError, match="divide evenly"):
        run(model, dataset, batch_size=9, gradient_accumulation_steps=2)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        run(model, dataset, batch_size=len(dataset) + 2)


def test_a_non_finite_loss_stops_the_run():
    model, dataset = pretraining_setup()
    config = TrainingConfig(max_steps=3, batch_size=8, progress_bar=False)
    with pytest.raises(FloatingPointError, match="step 1"):
        train(model, dataset, config, collate_fn=dataset.collate,
              loss_fn=lambda m, b: pretraining_loss(m, b) * float("nan"))


# ---------------------------------------------------------------------------------------
# Parameter groups with their own peak rates (layer-wise learning-rate decay, chapter 12)
# ---------------------------------------------------------------------------------------
def test_parameter_groups_get_their_own_rates_scaled_by_the_same_schedule(monkeypatch):
    model, dataset = pretraining_setup(dropout=0.0)
    encoder = [p for n, p in model.named_parameters() if n.startswith("bert.encoder.")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("bert.encoder.")]
    groups = [{"params": encoder, "lr": 1e-4}, {"params": rest, "lr": 1e-3}]
    config = TrainingConfig(max_steps=5, batch_size=8, learning_rate=1e-3, warmup_steps=2, progress_bar=False)
    optimizer = make_optimizer(model, config, groups)
    assert [g["peak_lr"] for g in optimizer.param_groups] == [1e-4, 1e-4, 1e-3, 1e-3]  # decay / no decay each
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0, 0.01, 0.0]
    seen = []
    step = torch.optim.AdamW.step

    def spying_step(self, *args, **kwargs):  # the rates the loop set, read at every update
        seen.append([g["lr"] for g in self.param_groups])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spying_step)
    history = train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
                    parameter_groups=groups)
    assert len(seen) == 5
    for s, rates in enumerate(seen):
        assert rates == pytest.approx([lr_at(s, r, 2, 5) for r in (1e-4, 1e-4, 1e-3, 1e-3)]), s
    assert history.train[0]["lr"] == lr_at(0, 1e-3, 2, 5)  # the history keeps config.learning_rate's


def test_one_group_at_the_config_rate_equals_the_default():
    a, dataset = pretraining_setup(dropout=0.0)
    b, _ = pretraining_setup(dropout=0.0)
    config = TrainingConfig(max_steps=4, batch_size=8, learning_rate=1e-3, warmup_steps=1, progress_bar=False)
    train(a, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss)
    train(b, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
          parameter_groups=[{"params": list(b.parameters()), "lr": 1e-3}])
    assert max_difference(a.state_dict(), b.state_dict()) == 0.0


def test_a_group_at_a_tiny_rate_barely_moves():
    # the embeddings at a 1000x smaller rate barely move; the blocks move as usual
    model, dataset = pretraining_setup(dropout=0.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    slow = [p for n, p in model.named_parameters() if n.startswith("bert.embeddings.")]
    fast = [p for n, p in model.named_parameters() if not n.startswith("bert.embeddings.")]
    config = TrainingConfig(max_steps=4, batch_size=8, learning_rate=1e-3, progress_bar=False)
    train(model, dataset, config, collate_fn=dataset.collate, loss_fn=pretraining_loss,
          parameter_groups=[{"params": slow, "lr": 1e-6}, {"params": fast, "lr": 1e-3}])
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    assert moved["bert.embeddings.position_embeddings.weight"] < 1e-5
    assert moved["bert.encoder.layer.0.attention.self.query.weight"] > 1e-4


@pytest.mark.parametrize("groups, message", [
    (lambda m: [], "non-empty list"),
    (lambda m: [{"params": list(m.parameters())}], "'params' and 'lr'"),
    (lambda m: [{"params": list(m.parameters()), "lr": 0.0}], "peak rate > 0"),
    (lambda m: [{"params": list(m.parameters()), "lr": 1e-3}, {"params": [m.bert.pooler.dense.bias], "lr": 1e-3}],
     "in two parameter groups"),
    (lambda m: [{"params": list(m.bert.encoder.parameters()), "lr": 1e-3}], "in no group"),
    (lambda m: [{"params": list(m.parameters()) + [torch.nn.Parameter(torch.zeros(3))], "lr": 1e-3}],
     "not a parameter of the model"),
])
def test_bad_parameter_groups_are_refused(groups, message):
    model, _ = pretraining_setup()
    with pytest.raises(ValueError, match=message):
        make_optimizer(model, TrainingConfig(), groups(model))


# ---------------------------------------------------------------------------------------
# Layer-wise learning-rate decay
# ---------------------------------------------------------------------------------------
def test_layer_depths_and_rates():
    tokenizer = small_tokenizer()
    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_config(tokenizer, num_hidden_layers=3))
    assert layer_depth("bert.embeddings.word_embeddings.weight", 3) == 0
    assert layer_depth("bert.encoder.layer.0.attention.self.query.weight", 3) == 1
    assert layer_depth("bert.encoder.layer.2.output.dense.bias", 3) == 3
    assert layer_depth("bert.pooler.dense.weight", 3) == 4
    assert layer_depth("classifier.weight", 3) == 4
    groups = layerwise_lr_groups(model, 1e-3, 0.5)
    assert [g["depth"] for g in groups] == [0, 1, 2, 3, 4]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 / 16, 1e-3 / 8, 1e-3 / 4, 1e-3 / 2, 1e-3])
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in groups[4]["params"]} == {"bert.pooler.dense.weight", "bert.pooler.dense.bias",
                                                           "classifier.weight", "classifier.bias"}
    assert sum(len(g["params"]) for g in groups) == len(names)
    assert all(g["lr"] == 1e-3 for g in layerwise_lr_groups(model, 1e-3, 1.0))  # decay 1: one rate
    wrapped = pooling.PooledClassifier(model.bert)  # its .config is the encoder's
    assert len(layerwise_lr_groups(wrapped, 1e-3, 0.9)) == 5


def test_layerwise_groups_refuse_bad_input():
    tokenizer = small_tokenizer()
    model = BertForSequenceClassification(tiny_config(tokenizer))
    for decay in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"decay must be in \(0, 1\]"):
            layerwise_lr_groups(model, 1e-3, decay)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        layerwise_lr_groups(model, 0.0, 0.9)
    with pytest.raises(ValueError, match="pass num_layers"):
        layerwise_lr_groups(torch.nn.Linear(2, 2), 1e-3, 0.9)
    with pytest.raises(ValueError, match="names block 5"):
        layer_depth("bert.encoder.layer.5.output.dense.bias", 2)
