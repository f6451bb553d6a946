"""Mixed precision for the inversion: the UNet computes in a low dtype, the embedding stays fp32.

Why this way: only the (F+1, N, D) tokens and their AdamW state are trained, so keeping them in
fp32 costs nothing, while the UNet's activations (the memory and the FLOPs) drop to bf16/fp16.
The tokens are cast inside the forward by ComfyUI's own `_apply_model` (it casts `c_crossattn`
and the extra conds to the compute dtype), so their gradient arrives in fp32; the model returns
fp32 denoised latents, so the loss is computed in fp32.

The low dtype is applied with ComfyUI's manual-cast mechanism, the same one
`ModelPatcher.set_model_compute_dtype` uses: `BaseModel.manual_cast_dtype` sets the dtype of
the UNet's input, and `comfy_cast_weights` on ComfyUI's ops casts each weight to the input's
dtype as it is used. It is set here for the duration of a run and restored in `finally`, rather
than by cloning the patcher with `set_model_compute_dtype`: that clone forces a full model
reload (ComfyUI's own TODO), and ComfyUI detaches a replaced clone with unpatch_all=False, which
would leave the object patch behind on the shared model.
"""
import contextlib

import torch

import comfy.model_management

from .errors import ReenactError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_UNSET = object()


def model_compute_dtype(model) -> torch.dtype:
    """The dtype ComfyUI runs this BaseModel's UNet in: its manual-cast dtype, else its weights'."""
    return getattr(model, "manual_cast_dtype", None) or model.get_dtype()


def resolve_precision(precision: str, model) -> torch.dtype:
    """'auto' means what ComfyUI chose when it loaded the model (fp16 on most GPUs, fp32 on CPU)."""
    if precision == "auto":
        return model_compute_dtype(model)
    if precision not in DTYPES:
        raise ReenactError(f"expected precision in {PRECISIONS}, got {precision!r}")
    return DTYPES[precision]


def low_vram_dtype(device) -> torch.dtype:
    """bf16 where the GPU runs it (ComfyUI's own test), else fp16 with loss scaling.

    ComfyUI's test says no to bf16 on any CPU; there is no VRAM to save there and fp16 is no
    faster on CPUs, so the CPU gets bf16, which cannot overflow.
    """
    mm = comfy.model_management
    if mm.is_device_cpu(device) or mm.should_use_bf16(device):
        return torch.bfloat16
    return torch.float16


@contextlib.contextmanager
def computing_in(model, dtype: torch.dtype):
    """Run `model` (a comfy BaseModel) in `dtype` via manual cast; restore both switches on exit."""
    if dtype == model_compute_dtype(model):
        yield
        return
    saved_attr = model.__dict__.get("manual_cast_dtype", _UNSET)
    ops = [m for m in model.diffusion_model.modules() if hasattr(m, "comfy_cast_weights")]
    saved_flags = [m.__dict__.get("comfy_cast_weights", _UNSET) for m in ops]
    try:
        model.manual_cast_dtype = dtype
        for m in ops:
            m.comfy_cast_weights = True
        yield
    finally:
        if saved_attr is _UNSET:
            model.__dict__.pop("manual_cast_dtype", None)
        else:
            model.manual_cast_dtype = saved_attr
        for m, flag in zip(ops, saved_flags):
            if flag is _UNSET:
                m.__dict__.pop("comfy_cast_weights", None)
            else:
                m.comfy_cast_weights = flag


def loss_scaler(dtype: torch.dtype, device) -> torch.amp.GradScaler:
    """Dynamic loss scaling for fp16 only: fp16 gradients underflow/overflow, bf16 and fp32 do not.

    An overflowing step is skipped and the scale halved (torch's GradScaler); disabled otherwise,
    when it is a pass-through.
    """
    return torch.amp.GradScaler(torch.device(device).type, enabled=dtype == torch.float16)
