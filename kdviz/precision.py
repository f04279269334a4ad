"""Which floating-point precision a run trains in, chosen from the device it runs on.

``precision="auto"`` (the default everywhere) picks bf16 autocast on GPUs with native bf16
(compute capability 8.0 and up: A100, L4, H100), fp16 autocast with loss scaling on older GPUs
(T4, V100: most free Colab kernels) and fp32 on CPUs. TF32 matmuls are switched on wherever the
GPU has them. The ``Trainer`` does the autocast and the loss scaling; this module only decides.
"""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BF16_MIN_CAPABILITY = (8, 0)
"""The first CUDA compute capability with native bf16 (and TF32) tensor cores (Ampere)."""


def resolve_precision(precision: str = "auto", *, device: str | torch.device | None = None) -> str:
    """The precision a run will use: ``precision`` itself, or for ``"auto"`` the device's best.

    Args:
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        device: the training device (default: the first GPU when there is one, else the CPU).

    Returns:
        ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Raises:
        ValueError: an unknown precision, ``bf16`` asked of a GPU without native bf16, or ``fp16`` asked
            of a CPU (no fp16 autocast there: the run would train in fp32 while saying fp16).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {list(PRECISIONS)}.")
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and precision == "fp16":
        raise ValueError("precision='fp16' needs a CUDA GPU (fp16 autocast with loss scaling); on a CPU the run "
                         "would train in fp32. Use precision='fp32' or 'auto' here (or 'bf16', which CPUs run "
                         "as bf16 autocast).")
    if device.type != "cuda":  # autocast on a CPU is slower than fp32 there: only when asked for
        return "fp32" if precision == "auto" else precision
    native_bf16 = torch.cuda.get_device_capability(device) >= BF16_MIN_CAPABILITY
    if precision == "auto":
        return "bf16" if native_bf16 else "fp16"
    if precision == "bf16" and not native_bf16:
        raise ValueError(f"precision='bf16' needs a GPU of compute capability 8.0 or more; "
                         f"{torch.cuda.get_device_name(device)} has {torch.cuda.get_device_capability(device)}: "
                         f"use precision='fp16' (or 'auto').")
    return precision


def precision_from_bf16(bf16: bool) -> str:
    """The precision the retired ``bf16`` switch meant (the ``--bf16`` alias, older config files):
    bf16 autocast when on, fp32 when off."""
    return "bf16" if bf16 else "fp32"


def _has_tf32() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= BF16_MIN_CAPABILITY


def precision_arguments(precision: str = "auto") -> dict:
    """``TrainingArguments`` fields for ``precision`` on this machine: ``bf16``, ``fp16`` and ``tf32``.

    Args:
        precision: as :func:`resolve_precision`.

    Returns:
        A dict to pass to ``TrainingArguments`` (fp16 brings the ``Trainer``'s loss scaling).
    """
    resolved = resolve_precision(precision)
    return {"bf16": resolved == "bf16", "fp16": resolved == "fp16", "tf32": True if _has_tf32() else None}


def describe_precision(precision: str = "auto") -> str:
    """A short phrase naming what ``precision`` will train in here, e.g. ``"fp16 autocast + loss scaling"``."""
    text = {"fp32": "fp32", "bf16": "bf16 autocast", "fp16": "fp16 autocast + loss scaling"}[resolve_precision(precision)]
    return text + (", TF32 matmuls" if _has_tf32() else "")
