"""Prepare a frozen ComfyUI UNet for backward passes to the embedding, and undo it afterwards.

ComfyUI loads models inside torch.inference_mode(), so its weights are inference tensors, which
autograd refuses to save for backward. For the run they are swapped for ordinary tensors that alias
the same memory. Everything done here is undone on exit, whether the run ends, fails or is
cancelled: the original weight tensors, requires_grad flags, and the checkpoint wrappers.

Checkpointing granularity trades memory for recompute (measured in benchmarks/README.md):
- "blocks": every layer the UNet's input/middle/output blocks hold (ResBlocks, whole spatial-video
  transformers, down/upsamplers). Not the blocks themselves: UNetModel.forward never calls a
  TimestepEmbedSequential, it iterates its layers (forward_timestep_embed), so a wrapper on the
  block's forward would never run.
- "layers": finer; every ResBlock and every transformer block (spatial and temporal) inside the
  transformers on its own. Smaller segments, so a lower recompute peak, at the cost of storing
  each layer's input and the activations of the ops left outside (norms, projections, mixers).
Both re-run the forward once in backward, so the extra time is about one forward pass.
"""
import contextlib

import torch
import torch.utils.checkpoint

CHECKPOINTING_MODES = ("blocks", "layers", "off")


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


def _checkpointed(forward):
    def run(*args, **kwargs):
        return torch.utils.checkpoint.checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return run


def _outermost(module, kinds):
    """Modules of the given kinds, not descending into a match (a VideoResBlock holds a ResBlock)."""
    found = []
    for child in module.children():
        if isinstance(child, kinds):
            found.append(child)
        else:
            found.extend(_outermost(child, kinds))
    return found


def checkpoint_targets(diffusion_model, mode: str):
    if mode == "off":
        return []
    if mode == "blocks":
        blocks = [*diffusion_model.input_blocks, diffusion_model.middle_block, *diffusion_model.output_blocks]
        return [layer for block in blocks for layer in block]
    if mode == "layers":
        from comfy.ldm.modules.attention import BasicTransformerBlock
        from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock
        return _outermost(diffusion_model, (ResBlock, BasicTransformerBlock))
    raise ValueError(f"expected checkpointing mode in {CHECKPOINTING_MODES}, got {mode!r}")


@contextlib.contextmanager
def gradient_checkpointing(diffusion_model, mode: str):
    """Wrap each target's forward in non-reentrant checkpointing; unwrap on exit."""
    targets = checkpoint_targets(diffusion_model, mode)
    saved = [(m, m.__dict__.get("forward")) for m in targets]
    try:
        for m in targets:
            m.forward = _checkpointed(m.forward)
        yield
    finally:
        for m, previous in saved:
            if previous is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = previous


@contextlib.contextmanager
def prepared_for_backward(diffusion_model, checkpointing: str):
    with autograd_ready(diffusion_model), frozen(diffusion_model), \
            gradient_checkpointing(diffusion_model, checkpointing):
        yield
