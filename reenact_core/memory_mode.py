"""Memory modes: one switch that picks checkpointing and precision for a card's VRAM.

"balanced" uses the settings as given. "low_vram" is for 8-16 GB cards: the finest
checkpointing ("layers"), each layer's input and every tensor kept for backward outside the
checkpointed layers moved to CPU memory (layer_wrappers.py, torch.autograd.graph.save_on_cpu), a
16-bit compute dtype (bf16 where the device runs it, else fp16 with loss scaling) unless fp16/bf16
was already asked for, and every other model ComfyUI holds on the device is unloaded before the run,
so the UNet and one layer's recompute have the card to themselves. The copies to and from the CPU
cost time each step (benchmarks/README.md).
"""
from dataclasses import dataclass

import torch

import comfy.model_management

from .errors import ReenactError
from .layer_wrappers import COMPILE_MODES
from .precision import low_vram_dtype, resolve_precision

MEMORY_MODES = ("balanced", "low_vram")


@dataclass(frozen=True)
class RunPlan:
    checkpointing: str
    dtype: torch.dtype
    free_other_models: bool
    offload_to_cpu: bool = False
    compile: bool = False


def compile_problem(checkpointing: str, compile: str) -> str | None:
    if checkpointing == "budget" and compile != "on":
        return (f"expected compile on for gradient_checkpointing 'budget' (the compiler plans its recompute), "
                f"got compile {compile}")
    return None


def plan_run(memory_mode: str, checkpointing: str, precision: str, model, device, compile: str = "off") -> RunPlan:
    """The checkpointing mode, compute dtype, offloading and compiling a run will actually use."""
    if compile not in COMPILE_MODES:
        raise ReenactError(f"expected compile in {COMPILE_MODES}, got {compile!r}")
    compiled = compile == "on"
    if memory_mode == "balanced":
        if problem := compile_problem(checkpointing, compile):
            raise ReenactError(problem)
        return RunPlan(checkpointing, resolve_precision(precision, model), False, compile=compiled)
    if memory_mode == "low_vram":
        dtype = resolve_precision(precision, model)
        if dtype not in (torch.bfloat16, torch.float16):
            dtype = low_vram_dtype(device)
        return RunPlan("layers", dtype, True, offload_to_cpu=True, compile=compiled)
    raise ReenactError(f"expected memory_mode in {MEMORY_MODES}, got {memory_mode!r}")


def free_other_models(model_patcher) -> None:
    """Unload every model on the load device except this one, then return cached memory."""
    mm = comfy.model_management
    keep = [m for m in mm.current_loaded_models if m.model is model_patcher]
    mm.free_memory(float("inf"), model_patcher.load_device, keep_loaded=keep)
    mm.soft_empty_cache()
