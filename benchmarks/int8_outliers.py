"""LLM.int8()'s outlier columns in ngbench's Figure 9 model, per layer and sequence length (issue #9).

LLM.int8() splits each linear layer's input: the feature columns holding a value of magnitude at least the
threshold (6.0) are multiplied in fp16, the rest in int8. The paper's Figure 9 shows its quantize/dequantize
share rising with sequence length; ngbench's falls. This counts, for the model and inputs that `make fig9`
runs (`sweeps/fig9.yaml`: Llama-3-8B built from its config, batch 1, the sequence lengths swept), how many
input columns of each linear layer reach the threshold: the columns LLM.int8() would take out of int8.

It runs the fp16 model (the int8 model's inputs differ from it only by the quantization error of the layers
before) with a forward pre-hook on every nn.Linear the int8 flow replaces, on the GPU:

    python benchmarks/int8_outliers.py --out outliers.json [--seq-lens 512,1024,2048,4096,8192]

It prints, per sequence length, the outlier columns summed over layers and the layers that have any.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def count(seq_len: int, threshold: float, device: str, overrides: list[str]) -> dict:
    import torch

    from ngbench.cli import compose_config, register_schemas
    from ngbench.models import build_bundle

    register_schemas()
    root = Path(__file__).resolve().parents[1]
    cfg = compose_config(f"hydra.searchpath=[file://{root / 'conf'}]", "platform=cuda", f"model.seq_len={seq_len}",
                         *overrides, config_name="fig9", config_dir=str(root / "sweeps"))
    bundle = build_bundle(cfg, device, "fp16")
    skip = tuple(cfg.model.get("quant_skip", ()) or ("lm_head",))
    found: dict[str, dict] = {}

    def hook(name):
        def pre(_module, inputs):
            x = inputs[0].detach()
            columns = (x.abs().reshape(-1, x.shape[-1]) >= threshold).any(dim=0)
            found[name] = {"outlier_columns": int(columns.sum()), "columns": int(x.shape[-1]),
                           "max_abs": float(x.abs().max())}
        return pre

    handles = [module.register_forward_pre_hook(hook(name)) for name, module in bundle.model.named_modules()
               if isinstance(module, torch.nn.Linear) and not any(name.endswith(s) for s in skip)]
    with torch.inference_mode():
        bundle()
    for handle in handles:
        handle.remove()
    del bundle
    torch.cuda.empty_cache()
    total = sum(v["outlier_columns"] for v in found.values())
    return {"seq_len": seq_len, "threshold": threshold, "layers": len(found),
            "layers_with_outliers": sum(v["outlier_columns"] > 0 for v in found.values()),
            "outlier_columns": total, "max_abs": max(v["max_abs"] for v in found.values()), "by_layer": found}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seq-lens", default="512,1024,2048,4096,8192")
    parser.add_argument("--threshold", type=float, default=6.0)
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("overrides", nargs="*", help="more config overrides (model.overrides='${model.tiny}' to try it)")
    args = parser.parse_args(argv)
    rows = []
    for seq_len in (int(s) for s in args.seq_lens.split(",")):
        row = count(seq_len, args.threshold, args.device, args.overrides)
        rows.append(row)
        print(f"seq {seq_len:5d}: {row['outlier_columns']:6d} outlier columns in {row['layers_with_outliers']} of "
              f"{row['layers']} layers; largest |x| {row['max_abs']:.2f}", flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
