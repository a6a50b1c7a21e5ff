"""Record a plain torch.profiler trace of torchvision ResNet-50 training steps, for `python -m ngbench.analyze`.

Nothing of ngbench runs while recording: this is the trace a user brings. The profiler's schedule
(wait, warmup, active) leaves the first steps out of the trace; `ProfilerStep#k` marks the active ones.

    python benchmarks/record_resnet50_trace.py --device cuda --out resnet50_train.json     # on the GPU machine
    python benchmarks/record_resnet50_trace.py --tiny --out /tmp/resnet50_tiny.json       # CPU, small settings
    python -m ngbench.analyze resnet50_train.json --out outputs/analyze/resnet50 --model resnet50 --batch-size 64
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda or cpu (default cuda)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"], help="autocast dtype")
    parser.add_argument("--wait", type=int, default=2, help="schedule: steps not profiled at all")
    parser.add_argument("--warmup", type=int, default=3, help="schedule: steps profiled but not written")
    parser.add_argument("--active", type=int, default=5, help="schedule: steps written to the trace")
    parser.add_argument("--record-shapes", action="store_true", help="record input shapes (record_shapes=True)")
    parser.add_argument("--with-stack", action="store_true", help="record Python stacks and nn.Module events")
    parser.add_argument("--tiny", action="store_true",
                        help="small settings that run on a CPU in seconds: cpu, batch 2, 64x64 images, "
                             "wait 1, warmup 1, active 2")
    parser.add_argument("--out", required=True, help="the Chrome trace to write (.json or .json.gz)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.device, args.batch_size, args.image_size = "cpu", 2, 64
        args.wait, args.warmup, args.active = 1, 1, 2
    return args


def main(argv: list[str] | None = None) -> int:
    import torch
    import torchvision
    from torch.profiler import ProfilerActivity, profile, schedule

    args = options(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("record_resnet50_trace: --device cuda but no CUDA device is visible; use --device cpu or --tiny",
              file=sys.stderr)
        return 2
    device = torch.device(args.device)
    model = torchvision.models.resnet50(weights=None).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_of = torch.nn.CrossEntropyLoss()
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, 1000, (args.batch_size,), device=device)
    autocast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            loss = loss_of(model(images), labels)
        loss.backward()
        optimizer.step()

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    plan = schedule(wait=args.wait, warmup=args.warmup, active=args.active, repeat=1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)   # the profiler writes no missing directory
    began = time.perf_counter()
    with profile(activities=activities, schedule=plan, record_shapes=args.record_shapes,
                 with_stack=args.with_stack, on_trace_ready=lambda prof: prof.export_chrome_trace(args.out)) as prof:
        for _ in range(args.wait + args.warmup + args.active):
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            prof.step()
    print(f"wrote {args.out}: ResNet-50 training, batch {args.batch_size}, {args.image_size}x{args.image_size}, "
          f"amp {args.amp}, {args.device}; ProfilerStep#{args.wait + args.warmup}-"
          f"{args.wait + args.warmup + args.active - 1} in {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
