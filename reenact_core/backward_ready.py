"""Prepare a frozen ComfyUI UNet for backward passes to the embedding, and undo it afterwards.

ComfyUI loads models inside torch.inference_mode(), so its weights are inference tensors, which
autograd refuses to save for backward. For the run they are swapped for ordinary tensors that alias
the same memory. Everything done here is undone on exit, whether the run ends, fails or is
cancelled: the original weight tensors, requires_grad flags, and the layer wrappers (layer_wrappers.py:
checkpointing, compiling, offloading).

What each checkpointing mode recomputes and costs: layer_wrappers.py and benchmarks/README.md.
"""
import contextlib

import torch

from .layer_wrappers import wrapped_layers


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
    of the CPU kernels' results (measured: 3e-6 on the small test UNet).
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
def prepared_for_backward(diffusion_model, checkpointing: str, compile: bool = False, offload: bool = False):
    """Autograd-ready, frozen weights and wrapped layers (layer_wrappers.py); yields the CompileReport."""
    with autograd_ready(diffusion_model), frozen(diffusion_model), \
            wrapped_layers(diffusion_model, checkpointing, compile, offload) as report:
        yield report
