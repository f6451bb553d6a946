"""Memory modes: one switch that picks checkpointing and precision for a card's VRAM.

"balanced" uses the settings as given. "low_vram" is for 12-16 GB cards: the finest
checkpointing ("layers"), a 16-bit compute dtype (bf16 where the device runs it, else fp16 with
loss scaling) unless fp16/bf16 was already asked for, and every other model ComfyUI holds on the
device is unloaded before the run, so the UNet and its activations have the card to themselves.
"""
from dataclasses import dataclass

import torch

import comfy.model_management

from .errors import ReenactError
from .precision import low_vram_dtype, resolve_precision

MEMORY_MODES = ("balanced", "low_vram")


@dataclass(frozen=True)
class RunPlan:
    checkpointing: str
    dtype: torch.dtype
    free_other_models: bool


def plan_run(memory_mode: str, checkpointing: str, precision: str, model, device) -> RunPlan:
    """The checkpointing mode and compute dtype a run will actually use."""
    if memory_mode == "balanced":
        return RunPlan(checkpointing, resolve_precision(precision, model), False)
    if memory_mode == "low_vram":
        dtype = resolve_precision(precision, model)
        if dtype not in (torch.bfloat16, torch.float16):
            dtype = low_vram_dtype(device)
        return RunPlan("layers", dtype, True)
    raise ReenactError(f"expected memory_mode in {MEMORY_MODES}, got {memory_mode!r}")


def free_other_models(model_patcher) -> None:
    """Unload every model on the load device except this one, then return cached memory."""
    mm = comfy.model_management
    keep = [m for m in mm.current_loaded_models if m.model is model_patcher]
    mm.free_memory(float("inf"), model_patcher.load_device, keep_loaded=keep)
    mm.soft_empty_cache()
