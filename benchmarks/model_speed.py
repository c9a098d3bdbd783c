"""Time forward + backward of bertedu.BertModel against transformers.BertModel.

Both models get the same config, the same weights and the same batch, in one process, and
run alternately so that machine noise hits both alike. This is a benchmark that prints
figures, not a test: nothing here can fail on a slow machine.

    .venv/bin/python benchmarks/model_speed.py [--config mini|base|tiny] [--batch 8] [--seq 128]
"""
import argparse
import statistics
import time

import torch
import transformers

import bertedu


def time_step(model, batch, repeats: int) -> list[float]:
    """Seconds per forward + backward pass, `repeats` times (after one warm-up)."""
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        output = model(**batch)
        output.last_hidden_state.float().pow(2).mean().backward()
        if i > 0:
            times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="mini", choices=["tiny", "mini", "base"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    config = getattr(bertedu.BertConfig, args.config)(hidden_dropout_prob=0.0,
                                                      attention_probs_dropout_prob=0.0)
    ours = bertedu.BertModel(config).to(args.device).train()
    reference_config = transformers.BertConfig(**{k: v for k, v in config.to_dict().items()
                                                  if k not in ("id2label", "architectures")})
    reference_config._attn_implementation = "sdpa"  # the fused kernel, as bertedu uses
    reference = transformers.BertModel(reference_config).to(args.device).train()
    reference.load_state_dict(ours.state_dict())  # same weights, same names

    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1000, config.vocab_size, (args.batch, args.seq), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[: args.batch // 2, args.seq * 3 // 4:] = 0  # half the batch is padded
    batch = {"input_ids": input_ids.to(args.device), "attention_mask": attention_mask.to(args.device)}

    with torch.no_grad():
        diff = (ours(**batch).last_hidden_state - reference(**batch).last_hidden_state).abs().max()
    ours_times, ref_times = [], []
    for _ in range(3):  # interleave to share the machine's noise
        ours_times += time_step(ours, batch, args.repeats)
        ref_times += time_step(reference, batch, args.repeats)

    ours_ms, ref_ms = 1000 * statistics.median(ours_times), 1000 * statistics.median(ref_times)
    tokens = args.batch * args.seq
    print(f"device {args.device}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"threads {torch.get_num_threads()}")
    print(f"config {args.config}: L={config.num_hidden_layers} H={config.hidden_size} "
          f"A={config.num_attention_heads}; batch {args.batch} x {args.seq} tokens")
    print(f"max |diff| of outputs (dropout off): {diff:.2e}")
    print(f"bertedu      forward+backward: {ours_ms:8.1f} ms  ({tokens / ours_ms * 1000:,.0f} tokens/s)")
    print(f"transformers forward+backward: {ref_ms:8.1f} ms  ({tokens / ref_ms * 1000:,.0f} tokens/s)")
    print(f"ratio bertedu / transformers: {ours_ms / ref_ms:.3f}")


if __name__ == "__main__":
    main()
