"""Try bad input and faults on the library, as a careful user would, and print a table.

Every case ends in one of four ways:
- correct:      the right result (checked against the reference where there is one);
- clear error:  an exception whose message names the culprit (file, line, field or argument);
- raw error:    an exception that names none of them;
- silent wrong: no exception, and a wrong result.
The goal is no raw error and no silent wrong. The cases are those of issue 16 (a fuzz of
the library); the tests in tests/ check each of them too. This script only reports.

    BERTEDU_DATA=../shared/data .venv/bin/python benchmarks/fault_table.py
"""
import gzip
import importlib
import json
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import scipy.stats
import torch
import transformers

import bertedu
from bertedu import BertConfig, BertForSequenceClassification, BertModel, data, datafiles, metrics
from bertedu.checkpoints import minilm_path
from bertedu.tokenization import BertTokenizer
from bertedu.training import TrainingConfig, save_checkpoint, train

SOURCE = Path(os.environ.get("BERTEDU_DATA", "../shared/data")).resolve()
WORK = Path(tempfile.mkdtemp(prefix="fault_table_"))
rows = []


def case(name):
    def register(function):
        try:
            outcome, detail = function()
        except Exception as error:  # an exception the case did not expect
            outcome, detail = "raw error", f"{type(error).__name__}: {error}"
        rows.append((name, outcome, detail))
        return function
    return register


def expect_error(call, *culprits):
    """A clear error names every culprit; anything returned is a silent wrong answer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        clear = all(str(culprit) in str(error) for culprit in culprits)
        return ("clear error" if clear else "raw error"), message
    return "silent wrong", f"returned {str(result)[:80]}"


def expect_same(ours, reference, tolerance=1e-5):
    same = math.isclose(ours, reference, rel_tol=tolerance, abs_tol=tolerance)
    return ("correct" if same else "silent wrong"), f"ours {ours:.6g}, reference {reference:.6g}"


def copy_of(relative_path, registered=True):
    """A private copy of a course file, in a fresh BERTEDU_DATA folder and an empty cache."""
    folder = Path(tempfile.mkdtemp(dir=WORK))
    target = folder / relative_path
    target.parent.mkdir(parents=True)
    shutil.copy(SOURCE / relative_path, target)
    os.environ["BERTEDU_DATA"] = str(folder)
    os.environ["BERTEDU_CACHE"] = str(folder / "cache")
    if not registered:
        datafiles.REMOTE_FILES.pop(relative_path, None)
    return target


def restore_registry():
    """Re-read the registry that `copy_of(..., registered=False)` edited."""
    importlib.reload(datafiles)


# ---------------------------------------------------------------------------------------
# Data files
# ---------------------------------------------------------------------------------------
@case("sst2/dev.tsv cut at a line boundary (399 of 872 records)")
def _():
    path = copy_of("sst2/dev.tsv")
    lines = path.read_text().split("\n")
    path.write_text("\n".join(lines[:400]) + "\n")
    return expect_error(lambda: data.load_sst2("dev"), path)


@case("sst2/dev.tsv with one label flipped")
def _():
    path = copy_of("sst2/dev.tsv")
    text = path.read_text()
    path.write_text(text.replace("\t1\n", "\t0\n", 1))
    return expect_error(lambda: data.load_sst2("dev"), path)


@case("sst2/dev.tsv header only (not registered)")
def _():
    path = copy_of("sst2/dev.tsv", registered=False)
    path.write_text(path.read_text().split("\n")[0] + "\n")
    result = expect_error(lambda: data.load_sst2("dev"), path)
    restore_registry()
    return result


@case("wikitext2 valid empty")
def _():
    path = copy_of("wikitext2/wiki.valid.tokens")
    path.write_text("")
    return expect_error(lambda: data.load_wikitext2("valid"), path)


@case("SMS Spam with CRLF line ends (not registered)")
def _():
    path = copy_of("smsspam/SMSSpamCollection", registered=False)
    reference = data.load_smsspam()
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    records = data.load_smsspam()
    restore_registry()
    ends_in_cr = sum(r["text"].endswith("\r") for r in records)
    same = records == reference
    return ("correct" if same else "silent wrong"), f"{len(records)} messages, {ends_in_cr} end in \\r"


@case("CoNLL eng.testa with CRLF (tag 'O\\r') (not registered)")
def _():
    path = copy_of("conll2003/eng.testa", registered=False)
    reference = data.load_conll2003("dev")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    records = data.load_conll2003("dev")
    restore_registry()
    return ("correct" if records == reference else "silent wrong"), f"{len(records)} sentences"


@case("an HTML page served for an unhashed download (no Content-Length)")
def _():
    folder = Path(tempfile.mkdtemp(dir=WORK))
    os.environ["BERTEDU_DATA"] = str(folder)
    os.environ["BERTEDU_CACHE"] = str(folder / "cache")
    remote = datafiles.RemoteFile("https://example.invalid/rte/dev.tsv", None)
    datafiles.REMOTE_FILES["rte/dev.tsv"] = remote
    real_fetch = datafiles._fetch
    datafiles._fetch = lambda url: (b"<!DOCTYPE html><html><body>Moved</body></html>", None)
    try:
        result = expect_error(lambda: data.load_rte("dev"), "rte/dev.tsv", "Content-Length")
    finally:
        datafiles._fetch = real_fetch
        restore_registry()
    kept = list((folder / "cache").rglob("dev.tsv")) if (folder / "cache").exists() else []
    return (result[0] if not kept else "silent wrong"), result[1]


@case("SQuAD dev .gz truncated (not registered)")
def _():
    path = copy_of("squad/dev-v1.1.json.gz", registered=False)
    path.write_bytes(path.read_bytes()[:50_000])
    result = expect_error(lambda: data.load_squad("dev"), path)
    restore_registry()
    return result


@case("SQuAD dev with bad JSON (not registered)")
def _():
    path = copy_of("squad/dev-v1.1.json.gz", registered=False)
    text = gzip.decompress(path.read_bytes()).decode()
    path.write_bytes(gzip.compress(text.replace('"answers"', '"answers" "', 1).encode()))
    result = expect_error(lambda: data.load_squad("dev"), path, "line")
    restore_registry()
    return result


@case("RTE dev with Latin-1 bytes (not registered)")
def _():
    path = copy_of("rte/dev.tsv", registered=False)
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b"e", b"\xe9", 1)
    path.write_bytes(b"\n".join(lines))
    result = expect_error(lambda: data.load_rte("dev"), path, "line 6")
    restore_registry()
    return result


for bad_score in ("nan", "7.5"):
    @case(f"STS-B dev score {bad_score} (not registered)")
    def _(bad_score=bad_score):
        path = copy_of("stsb/dev.tsv", registered=False)
        lines = path.read_text().split("\n")
        fields = lines[1].split("\t")
        fields[-1] = bad_score
        lines[1] = "\t".join(fields)
        path.write_text("\n".join(lines))
        result = expect_error(lambda: data.load_stsb("dev"), path, "line 2")
        restore_registry()
        return result


os.environ["BERTEDU_DATA"] = str(SOURCE)

# ---------------------------------------------------------------------------------------
# Model inputs, against transformers
# ---------------------------------------------------------------------------------------
torch.manual_seed(0)
tiny = BertConfig.tiny(vocab_size=100, num_labels=1)
ids = torch.randint(5, 100, (4, 7))


def reference_of(model):
    folder = WORK / f"model_{id(model)}"
    model.save_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(transformers, type(model).__name__).from_pretrained(folder).eval()


@case("regression labels shaped [B, 1]")
def _():
    model = BertForSequenceClassification(tiny).eval()
    reference = reference_of(model)
    labels = torch.tensor([[0.5], [1.5], [2.5], [3.5]])
    with torch.no_grad():
        return expect_same(model(ids, labels=labels).loss.item(), reference(ids, labels=labels).loss.item())


@case("attention mask with a value of 2")
def _():
    model = BertModel(tiny).eval()
    reference = reference_of(model)
    mask = torch.ones_like(ids)
    mask[:, 5:] = 0
    mask[:, :2] = 2
    with torch.no_grad():
        ours = model(ids, attention_mask=mask).last_hidden_state[mask.bool()]
        theirs = reference(ids, attention_mask=mask).last_hidden_state[mask.bool()]
    return expect_same(0.0, (ours - theirs).abs().max().item())


@case("attention mask with a NaN")
def _():
    mask = torch.ones(4, 7)
    mask[0, 3] = float("nan")
    return expect_error(lambda: BertModel(tiny)(ids, attention_mask=mask), "attention_mask")


@case("token_type_ids as a list")
def _():
    return expect_error(lambda: BertModel(tiny)(ids, token_type_ids=[[0] * 7] * 4), "token_type_ids")


@case("a zero-length sequence")
def _():
    return expect_error(lambda: BertModel(tiny)(torch.zeros(2, 0, dtype=torch.long)), "input_ids")


@case("an empty batch with labels")
def _():
    model = BertForSequenceClassification(BertConfig.tiny(vocab_size=100, num_labels=2))
    return expect_error(lambda: model(torch.zeros(0, 5, dtype=torch.long),
                                      labels=torch.zeros(0, dtype=torch.long)), "input_ids")


@case("token labels shaped [T, B] for [B, T] inputs")
def _():
    model = bertedu.BertForTokenClassification(BertConfig.tiny(vocab_size=100, num_labels=3))
    return expect_error(lambda: model(ids, labels=torch.zeros(7, 4, dtype=torch.long)), "labels")


# ---------------------------------------------------------------------------------------
# Config and tokenizer files
# ---------------------------------------------------------------------------------------
def config_file(**changes):
    values = BertConfig.tiny().to_dict()
    values.update(changes)
    path = WORK / f"config_{len(rows)}.json"
    path.write_text(json.dumps(values))
    return path


for label, content in [("a list", "[1, 2]"), ("null", "null")]:
    @case(f"config.json that is {label}")
    def _(content=content):
        path = WORK / f"config_{len(rows)}.json"
        path.write_text(content)
        return expect_error(lambda: BertConfig.from_json_file(path), path)

for field, value in [("hidden_size", "128"), ("num_attention_heads", 0), ("layer_norm_eps", "1e-12"),
                     ("layer_norm_eps", -1e-12), ("hidden_dropout_prob", 1.5)]:
    @case(f"config.json {field} = {value!r}")
    def _(field=field, value=value):
        path = config_file(**{field: value})
        return expect_error(lambda: BertConfig.from_json_file(path), path, field)


@case('tokenizer_config.json "do_lower_case": "false"')
def _():
    folder = WORK / "tokenizer"
    shutil.copytree(minilm_path(), folder)
    path = folder / "tokenizer_config.json"
    values = json.loads(path.read_text())
    values["do_lower_case"] = "false"
    path.write_text(json.dumps(values))
    return expect_error(lambda: BertTokenizer.from_pretrained(folder), path, "do_lower_case")


@case("truncation='only_first' that would empty the first text")
def _():
    tokenizer = BertTokenizer.from_pretrained(minilm_path())
    return expect_error(lambda: tokenizer("world", "hello", truncation="only_first", max_length=4),
                        "max_length", "only_first")


@case("TrainingConfig(learning_rate='1e-4')")
def _():
    return expect_error(lambda: TrainingConfig(learning_rate="1e-4"), "learning_rate")


# ---------------------------------------------------------------------------------------
# Training checkpoints
# ---------------------------------------------------------------------------------------
def tiny_run():
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig.tiny(vocab_size=100, num_labels=2))
    dataset = [{"input_ids": torch.randint(5, 100, (6,)), "labels": torch.tensor(i % 2)} for i in range(16)]

    def collate(items):
        return {"input_ids": torch.stack([x["input_ids"] for x in items]),
                "labels": torch.stack([x["labels"] for x in items])}
    return model, dataset, collate


@case("resume refused for other settings leaves the model untouched")
def _():
    model, dataset, collate = tiny_run()
    folder = WORK / "run"
    train(model, dataset, TrainingConfig(max_steps=2, batch_size=4, save_every=2, output_dir=str(folder),
                                         progress_bar=False), collate_fn=collate)
    fresh, _, _ = tiny_run()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    outcome = expect_error(lambda: train(fresh, dataset, TrainingConfig(max_steps=4, batch_size=8, progress_bar=False),
                                         collate_fn=collate, resume_from=folder), "settings")
    untouched = all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
    return (outcome[0] if untouched else "silent wrong"), outcome[1] + ("" if untouched else " (model overwritten)")


@case("a training checkpoint with one flipped byte")
def _():
    path = WORK / "run" / "checkpoint.pt"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    damaged = WORK / "damaged.pt"
    damaged.write_bytes(bytes(content))
    model, _, _ = tiny_run()
    return expect_error(lambda: bertedu.training.load_checkpoint(damaged, model), damaged)


@case("save_pretrained killed (SIGKILL) at 30 random moments")
def _():
    import multiprocessing
    import random
    import signal
    import sys
    import time
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_checkpoints import load_numbers, numbered_model, save_forever, set_number

    folder = WORK / "saved"
    model = numbered_model(0)
    started = time.perf_counter()
    model.save_pretrained(folder)
    one_save = time.perf_counter() - started
    rng, mixed, last = random.Random(0), 0, 0
    for kill in range(30):
        child = multiprocessing.get_context("fork").Process(target=save_forever, args=(model, folder, 1000 * (kill + 1)))
        child.start()
        time.sleep(rng.uniform(0.0, 4 * one_save))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        weights_number, config_number, _ = load_numbers(folder)
        mixed += weights_number != config_number
    set_number(model, 1)
    model.save_pretrained(folder)
    leftovers = [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    outcome = "correct" if mixed == 0 and not leftovers else "silent wrong"
    return outcome, f"{mixed} mixed folders of 30; {len(leftovers)} temporary files after the next save"


# ---------------------------------------------------------------------------------------
# Metrics, against scipy
# ---------------------------------------------------------------------------------------
for scale in (1e200, 1e-200):
    @case(f"pearson of [1, 2, 3] x {scale:g} against [1, 2, 4]")
    def _(scale=scale):
        x, y = [scale, 2 * scale, 3 * scale], [1.0, 2.0, 4.0]
        return expect_same(metrics.pearson(x, y), scipy.stats.pearsonr(x, y)[0])


# ---------------------------------------------------------------------------------------
width = max(len(name) for name, _, _ in rows)
print(f"{'case':{width}s}  outcome       detail")
for name, outcome, detail in rows:
    print(f"{name:{width}s}  {outcome:12s}  {detail[:110]}")
counts = {k: sum(outcome == k for _, outcome, _ in rows) for k in ("correct", "clear error", "raw error", "silent wrong")}
print(f"\n{len(rows)} cases: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
shutil.rmtree(WORK, ignore_errors=True)
