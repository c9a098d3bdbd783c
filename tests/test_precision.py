"""bf16 autocast where the hardware has it (`bertedu.precision`), and prediction under it."""
import sys
from pathlib import Path

import torch

from bertedu import BertConfig, precision
from bertedu.batching import predict
from bertedu.compression import quantize_dynamic_int8
from bertedu.finetuning import predict_logits
from bertedu.precision import cpu_has_fast_bf16, has_int8_layers, use_mixed_precision

sys.path.insert(0, str(Path(__file__).parent))
from tiny_classifier import random_batch, tiny_classifier  # noqa: E402

CONFIG = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=16)


class Batches:
    """A dataset of the batching protocol around `random_batch`'s rows."""

    def __init__(self, batch):
        self.rows = [{k: v[i] for k, v in batch.items()} for i in range(len(batch["input_ids"]))]
        self.lengths = [len(row["input_ids"]) for row in self.rows]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def collate(self, rows):
        return {k: torch.stack([row[k] for row in rows]) for k in rows[0]}


def test_mixed_precision_follows_the_cpu_and_can_be_forced(monkeypatch):
    cpu = torch.device("cpu")
    assert use_mixed_precision(None, cpu) is cpu_has_fast_bf16()
    assert use_mixed_precision(True, cpu) is True
    assert use_mixed_precision(False, cpu) is False
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: False)  # a CPU without bf16 hardware
    assert use_mixed_precision(None, cpu) is False
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    assert use_mixed_precision(None, cpu) is True


def test_cpu_bf16_detection_reads_the_feature_flags(monkeypatch, tmp_path):
    flags = {"with avx512_bf16": "fpu sse avx512f avx512_bf16 avx512_vnni", "with amx": "fpu amx_bf16 amx_tile",
             "without": "fpu sse avx2 avx512f"}
    real_open = open
    for name, line in flags.items():
        cpuinfo = tmp_path / name.replace(" ", "_")
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {line}\n")
        monkeypatch.setattr("builtins.open", lambda path, *a, _file=cpuinfo, **k:
                            real_open(_file if path == "/proc/cpuinfo" else path, *a, **k))
        monkeypatch.setattr(torch._C._cpu, "_init_amx", lambda: False, raising=False)
        assert cpu_has_fast_bf16() is (name != "without"), name


def test_predict_in_bf16_is_close_to_fp32_and_fp32_on_request_is_exact():
    model = tiny_classifier(CONFIG)
    batch = random_batch(B=6)
    data = Batches(batch)
    with torch.no_grad():
        exact = model(**batch).logits
    fp32 = predict_logits(model, data, mixed_precision=False)
    bf16 = predict_logits(model, data, mixed_precision=True)
    assert fp32.dtype == bf16.dtype == torch.float32
    torch.testing.assert_close(fp32, exact)
    assert not torch.equal(bf16, fp32)  # bf16 really ran
    torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.05)


def test_int8_models_predict_without_autocast_by_default():
    model = tiny_classifier(CONFIG)
    quantized = quantize_dynamic_int8(model)
    assert has_int8_layers(quantized) and not has_int8_layers(model)
    data = Batches(random_batch(B=3))
    rows = predict(quantized, data, lambda m, b: m(**b).logits)  # autocast would make int8 layers fail
    assert torch.stack(rows).dtype == torch.float32
