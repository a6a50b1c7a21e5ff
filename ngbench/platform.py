"""Resolve the platform group to a device and record the machine a run used."""

from __future__ import annotations

import platform as pyplatform
import socket
from importlib import metadata

from ngbench.errors import UserError

LIBRARIES = ("torch", "torchvision", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt",
             "bitsandbytes", "hydra-core", "numpy", "pandas")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_device(platform_cfg) -> str:
    """`cpu`, or `cuda:<index>` (platform.device: cpu | cuda | auto); platform=cuda without a GPU is a user
    error."""
    index = platform_cfg.index
    if platform_cfg.device == "cpu":
        return "cpu"
    if platform_cfg.device == "auto":
        return f"cuda:{index}" if cuda_available() else "cpu"
    if not cuda_available():
        raise UserError("platform=cuda but no CUDA GPU is visible to PyTorch; valid here: platform=cpu or platform=auto")
    import torch

    if index >= torch.cuda.device_count():
        raise UserError(f"platform.index={index} but only {torch.cuda.device_count()} GPU(s) are visible")
    return f"cuda:{index}"


def spread_devices(platform_cfg, device: str) -> list[str]:
    """The devices the model is spread over: platform.devices when it lists several (a repeat is a part of
    its own: [cpu, cpu] cuts the model in two on the CPU), else [device]."""
    devices = [str(d) for d in (platform_cfg.get("devices") or [])]
    return devices if len(devices) > 1 else [device]


def model_devices(platform_cfg, device: str) -> list[str]:
    """The distinct devices the model runs on (for memory and energy): those of spread_devices()."""
    return list(dict.fromkeys(spread_devices(platform_cfg, device)))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return pyplatform.processor() or pyplatform.machine()


def describe(device: str) -> dict:
    """CPU model, GPU name, driver, library versions: what a reader needs to cite a number."""
    import os

    import torch

    env = {
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": pyplatform.python_version(),
        "libraries": {},
    }
    for name in LIBRARIES:
        try:
            env["libraries"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                   cuda_runtime=torch.version.cuda, cudnn=torch.backends.cudnn.version())
        try:
            import pynvml

            pynvml.nvmlInit()
            env["driver"] = pynvml.nvmlSystemGetDriverVersion()
        except Exception:
            env["driver"] = "unknown (nvidia-ml-py missing)"
    return env
