"""Every change an inversion makes to the shared MODEL, made in one place and undone in one place.

The MODEL is the user's: other nodes sample with it before and after, and ComfyUI may unload it between steps of
ours. So everything a run changes is applied by `changed_for_run` and undone on its exit, whether the run ends, fails
or is cancelled, in the reverse order:
- swapped weights: ComfyUI loads models inside torch.inference_mode(), so its weights are inference tensors, which
  autograd refuses to save for backward; for the run they are ordinary tensors that alias the same memory;
- requires_grad flags: off for every weight (no weight gradients);
- the compute dtype: ComfyUI's manual cast (precision.py);
- the layer wrappers (layer_wrappers.py: checkpointing, compiling, offloading) and, while compiling, dynamo's and
  the partitioner's settings (compiled_layers.py).
The compiled functions themselves outlive the run on purpose (compiled_layers.py says why); they hold no MODEL.

What each checkpointing mode recomputes and costs: layer_wrappers.py and benchmarks/README.md.
"""
import contextlib

import torch

from .layer_wrappers import wrapped_layers
from .memory_mode import RunPlan
from .precision import computing_in


def _ordinary_alias(t: torch.Tensor) -> torch.Tensor:
    """An ordinary tensor on the same memory as inference tensor `t`: no copy, same bits and layout."""
    alias = torch.empty(0, dtype=t.dtype, device=t.device)
    return alias.set_(t.untyped_storage(), t.storage_offset(), t.size(), t.stride())


@contextlib.contextmanager
@torch.inference_mode(False)
def autograd_ready(module: torch.nn.Module):
    """Swap inference-mode parameters and buffers for ordinary aliases of their memory; swap back on exit.

    Aliases rather than copies: a copy would cost a second set of weights while it is made, and would
    change the MODEL for good, since new allocations can differ in alignment and so in the last bits
    of the CPU kernels' results (by how much: benchmarks/README.md, the optimisation table).
    """
    swapped = []
    try:
        for sub in module.modules():
            for name, p in list(sub.named_parameters(recurse=False)):
                if p.is_inference():
                    alias = torch.nn.Parameter(_ordinary_alias(p), requires_grad=p.requires_grad)
                    swapped.append((sub._parameters, name, p, alias))
                    sub._parameters[name] = alias
            for name, b in list(sub.named_buffers(recurse=False)):
                if b is not None and b.is_inference():
                    alias = _ordinary_alias(b)
                    swapped.append((sub._buffers, name, b, alias))
                    sub._buffers[name] = alias
        yield len(swapped)
    finally:
        for table, name, original, alias in reversed(swapped):
            if table.get(name) is alias:
                table[name] = original


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """No weight gradients while inside; the original requires_grad flags come back on exit."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        module.requires_grad_(False)
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def changed_for_run(model, plan: RunPlan):
    """`model` (a comfy BaseModel) ready for backward passes to the embedding as `plan` says; yields the run's
    CompileReport. Everything is undone on exit."""
    unet = model.diffusion_model
    with autograd_ready(unet), frozen(unet), computing_in(model, plan.dtype), \
            wrapped_layers(unet, plan.checkpointing, compile=plan.compile, offload=plan.offload_to_cpu) as report:
        yield report
