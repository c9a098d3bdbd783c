"""`save_pretrained` never mixes two saves: killed at any moment (SIGKILL, no cleanup code
runs) or failing on a full disk, it leaves a folder that loads as the old save or the new
one, and the next save removes the temporary files a killed one left behind.

Every save here is numbered: the number is in a weight (the whole `embeddings.LayerNorm.bias`)
and in the config (an extra `save_number` field, which `config.json` keeps), so a folder
with the weights of one save and the config of another shows up as two different numbers.
"""
import errno
import json
import multiprocessing
import os
import random
import signal
import time
import warnings

import pytest
import safetensors.torch
import torch

from bertedu import BertConfig, BertModel
from bertedu.checkpoints import (CONFIG_METADATA_KEY, CONFIG_NAME, SAFETENSORS_NAME, load_shared_run, read_config,
                                 save_shared_run, shared_run_folder)

fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="SIGKILL tests fork a child process")


def numbered_model(number: int) -> BertModel:
    model = BertModel(BertConfig.tiny())
    set_number(model, number)
    return model


def set_number(model: BertModel, number: int) -> None:
    model.config.extra["save_number"] = number
    with torch.no_grad():
        model.embeddings.LayerNorm.bias.fill_(number)


def load_numbers(folder) -> tuple[int, int, list[str]]:
    """Load the folder as a user would; return (number in the weights, number in the config
    the model was built with, warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = BertModel.from_pretrained(folder)
    bias = model.embeddings.LayerNorm.bias
    assert torch.equal(bias, torch.full_like(bias, bias[0].item())), "half of one save, half of another"
    return int(bias[0].item()), model.config.extra["save_number"], [str(w.message) for w in caught]


def config_json_number(folder) -> int:
    """The number in `config.json`, the only file `transformers` reads the config from."""
    return json.loads((folder / CONFIG_NAME).read_text())["save_number"]


def temporary_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def save_forever(model: BertModel, folder, first_number: int) -> None:
    """The child process: save numbered models into `folder` until killed."""
    number = first_number
    while True:
        set_number(model, number)
        model.save_pretrained(folder)
        number += 1


@fork
def test_random_sigkills_never_leave_a_mixed_folder(tmp_path):
    folder = tmp_path / "model"
    model = numbered_model(0)
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")  # the tokenizer's file must survive
    started = time.perf_counter()
    model.save_pretrained(folder)
    save_seconds = time.perf_counter() - started  # kill within the first few saves of each child
    context = multiprocessing.get_context("fork")
    rng = random.Random(0)
    kills, mixed, changed, config_json_behind, most_temporaries = 40, 0, 0, 0, 0
    last_number = 0
    start = time.perf_counter()
    for kill in range(kills):
        child = context.Process(target=save_forever, args=(model, folder, 1000 * (kill + 1)))
        child.start()
        time.sleep(rng.uniform(0.0, 4 * save_seconds))  # any moment of a save
        os.kill(child.pid, signal.SIGKILL)  # no `finally`, no cleanup: the process just ends
        child.join()
        assert child.exitcode == -9, "the child must have been saving, not crashed"

        weights_number, config_number, _ = load_numbers(folder)
        mixed += weights_number != config_number
        changed += weights_number != last_number
        assert weights_number in (last_number, *range(1000 * (kill + 1), 1000 * (kill + 2)))
        last_number = weights_number
        config_json_behind += config_json_number(folder) != weights_number
        most_temporaries = max(most_temporaries, len(temporary_files(folder)))
    seconds = time.perf_counter() - start
    print(f"\n{kills} kills in {seconds:.1f} s (one save: {1000 * save_seconds:.0f} ms): {mixed} mixed folders, {changed} kills after a new save, "
          f"config.json one save behind {config_json_behind} times, at most {most_temporaries} temporary files")

    assert mixed == 0
    assert changed >= kills // 4  # many kills came after the child had finished a save
    assert most_temporaries <= 1  # each save removes the scratch folder the killed one left
    set_number(model, 7)
    model.save_pretrained(folder)
    assert temporary_files(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, SAFETENSORS_NAME, "vocab.txt"]
    assert load_numbers(folder) == (7, 7, [])


def truncate_then_die(path) -> None:
    """Leave half of the file `path` written, and end the process at once."""
    with open(path, "rb+") as file:
        file.truncate(os.path.getsize(path) // 2)
    os._exit(0)


def rename_then_die_at(call: int, before: bool):
    """`os.replace` that kills the process at its `call`-th use, before or after renaming."""
    real_replace, calls = os.replace, []

    def replace(source, destination):
        calls.append(destination)
        if len(calls) == call and before:
            os._exit(0)
        real_replace(source, destination)
        if len(calls) == call:
            os._exit(0)
    return replace


def save_and_die(model, folder, moment: str) -> None:
    """The child process: start saving save 2, and die at `moment`."""
    if moment == "writing the config":
        real_to_json_file = BertConfig.to_json_file

        def to_json_file_then_die(config, path):
            real_to_json_file(config, path)
            truncate_then_die(path)
        BertConfig.to_json_file = to_json_file_then_die
    elif moment == "writing the weights":
        real_save_file = safetensors.torch.save_file

        def save_file_then_die(state, path, metadata):
            real_save_file(state, path, metadata)
            truncate_then_die(path)
        safetensors.torch.save_file = save_file_then_die
    elif moment == "before renaming the weights":
        os.replace = rename_then_die_at(1, before=True)
    elif moment == "between the two renames":
        os.replace = rename_then_die_at(2, before=True)
    elif moment == "after the last rename":
        os.replace = rename_then_die_at(2, before=False)
    set_number(model, 2)
    model.save_pretrained(folder)
    os._exit(1)  # not reached: the moment was missed


@fork
@pytest.mark.parametrize("moment, loads_as", [
    ("writing the config", 1),
    ("writing the weights", 1),
    ("before renaming the weights", 1),  # both temporary files complete, nothing renamed
    ("between the two renames", 2),  # the new weights carry their config: the new save
    ("after the last rename", 2),
])
def test_a_save_killed_at_each_step_loads_as_old_or_new(tmp_path, moment, loads_as):
    folder = tmp_path / "model"
    model = numbered_model(1)
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    child = multiprocessing.get_context("fork").Process(target=save_and_die, args=(model, folder, moment))
    child.start()
    child.join()
    assert child.exitcode == 0, f"the save did not die at {moment!r}"

    weights_number, config_number, warned = load_numbers(folder)
    assert (weights_number, config_number) == (loads_as, loads_as)
    if moment == "between the two renames":  # config.json (what transformers reads) lags one save
        assert config_json_number(folder) == 1
        assert any("differs from the config saved inside model.safetensors" in w for w in warned)
    else:
        assert config_json_number(folder) == loads_as and warned == []
    set_number(model, 3)
    model.save_pretrained(folder)  # the next save cleans up
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, SAFETENSORS_NAME, "vocab.txt"]
    assert load_numbers(folder) == (3, 3, [])


def test_a_full_disk_while_writing_the_config_keeps_the_old_save(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    model = numbered_model(1)
    model.save_pretrained(folder)
    before = {name: (folder / name).read_bytes() for name in (CONFIG_NAME, SAFETENSORS_NAME)}

    def disk_full(config, path):
        open(path, "w").write('{"hidden_size": 12')  # the first bytes fit, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BertConfig, "to_json_file", disk_full)
    set_number(model, 2)
    with pytest.raises(OSError, match="No space"):
        model.save_pretrained(folder)
    assert {name: (folder / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, SAFETENSORS_NAME]  # no temporary file
    assert load_numbers(folder) == (1, 1, [])


def test_other_files_in_the_folder_survive_a_save(tmp_path):
    from bertedu.tokenization import BertTokenizer

    tokenizer = BertTokenizer(vocab=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "word"])
    model = numbered_model(1)
    tokenizer.save_pretrained(tmp_path)  # before the model, as run_pretraining.py does
    (tmp_path / "checkpoint.pt").write_bytes(b"a training checkpoint")
    model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)  # and after
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt", CONFIG_NAME, SAFETENSORS_NAME, "tokenizer_config.json", "vocab.txt"]
    assert BertTokenizer.from_pretrained(tmp_path).vocab == tokenizer.vocab
    assert load_numbers(tmp_path) == (1, 1, [])


def test_a_save_removes_temporary_files_left_by_killed_saves(tmp_path):
    model = numbered_model(1)
    model.save_pretrained(tmp_path)
    scratch = tmp_path / f".{SAFETENSORS_NAME}.x1y2.tmp"  # a killed save's scratch folder
    scratch.mkdir()
    (scratch / SAFETENSORS_NAME).write_bytes(b"half a file")
    (scratch / ".tmpAbC123").write_bytes(b"safetensors' own temporary file")
    (tmp_path / f".{CONFIG_NAME}.a3b4.tmp").write_bytes(b"half a file")  # left by older bertedu
    (tmp_path / ".notes.tmp").write_text("not ours: kept")
    model.save_pretrained(tmp_path)
    assert temporary_files(tmp_path) == [".notes.tmp"]


def test_the_config_saved_with_the_weights_wins_over_an_edited_config_json(tmp_path):
    model = numbered_model(1)
    model.save_pretrained(tmp_path)
    edited = json.loads((tmp_path / CONFIG_NAME).read_text())
    edited["save_number"] = 99
    (tmp_path / CONFIG_NAME).write_text(json.dumps(edited))
    with pytest.warns(UserWarning, match="using the config saved with the weights"):
        assert read_config(tmp_path).extra["save_number"] == 1


def test_folders_without_a_stored_config_read_config_json(tmp_path):
    # transformers, and bertedu before the stored copy, write only {"format": "pt"}
    model = numbered_model(1)
    model.save_pretrained(tmp_path)
    state = safetensors.torch.load_file(tmp_path / SAFETENSORS_NAME)
    safetensors.torch.save_file(state, tmp_path / SAFETENSORS_NAME, metadata={"format": "pt"})
    edited = json.loads((tmp_path / CONFIG_NAME).read_text())
    edited["save_number"] = 5
    (tmp_path / CONFIG_NAME).write_text(json.dumps(edited))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_config(tmp_path).extra["save_number"] == 5


def test_the_stored_config_is_the_exact_config_json(tmp_path):
    numbered_model(1).save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / SAFETENSORS_NAME), framework="pt") as weights:
        assert weights.metadata()[CONFIG_METADATA_KEY] == (tmp_path / CONFIG_NAME).read_text()


def test_a_shared_run_is_found_only_with_the_same_settings_and_only_once_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTEDU_RUNS", str(tmp_path))
    settings = {"steps": 148, "train_ids": ["a", "b"]}
    folder = shared_run_folder("squad", settings)
    assert folder.parent == tmp_path and folder == shared_run_folder("squad", dict(reversed(settings.items())))
    assert shared_run_folder("squad", {**settings, "steps": 150}) != folder
    assert load_shared_run(BertModel, folder) == (None, None)
    model = numbered_model(3)
    model.save_pretrained(folder)  # weights without training.json: an unfinished save
    assert load_shared_run(BertModel, folder) == (None, None)
    save_shared_run(model, folder, {"steps": 148, "losses": [2.0, 1.5]})
    loaded, record = load_shared_run(BertModel, folder)
    assert record == {"steps": 148, "losses": [2.0, 1.5]}
    assert loaded.embeddings.LayerNorm.bias[0].item() == 3
