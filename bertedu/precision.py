"""bf16 autocast, where the hardware multiplies bf16: `use_mixed_precision`.

Training (`training.train`) and prediction (`batching.predict`) ask it: matrix products run
in bfloat16 on a GPU with bf16 and on a CPU with AMX or AVX512-BF16, about 6x faster than
fp32 there; weights and results stay fp32. `benchmarks/bf16_accuracy.py` measures what it
costs in accuracy.
"""
import torch
from torch import nn


def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX, from `/proc/cpuinfo`,
    else asked of PyTorch); without it bf16 autocast is slower than fp32."""
    flags = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:  # not Linux
        pass
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    init_amx = getattr(getattr(torch._C, "_cpu", None), "_init_amx", None)
    return bool(init_amx is not None and init_amx())


def use_mixed_precision(requested: bool | None, device: torch.device) -> bool:
    """bf16 autocast: by default on a GPU with bf16 (Ampere or newer) and on a CPU with bf16
    hardware (`cpu_has_fast_bf16`); `requested=True/False` forces it on or off. Weights,
    optimizer state and updates stay fp32."""
    if requested is None:
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_has_fast_bf16()
    return requested


def inference_autocast(model: nn.Module, device: torch.device, requested: bool | None = None):
    """The autocast context for a model's predictions: bf16 as `use_mixed_precision` decides,
    except that by default a model with int8 layers (`has_int8_layers`) runs in fp32."""
    if requested is None and has_int8_layers(model):
        requested = False
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_mixed_precision(requested, device))


def has_int8_layers(model: nn.Module) -> bool:
    """True when the model holds PyTorch's dynamic int8 layers (`compression.quantize_dynamic_int8`),
    which take fp32 inputs only: such a model runs without autocast."""
    return any(type(module).__module__.startswith("torch.ao.nn.quantized") for module in model.modules())
