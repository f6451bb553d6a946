"""Prepare a frozen ComfyUI UNet for backward passes to the embedding, and undo it afterwards.

ComfyUI loads models inside torch.inference_mode(), so its weights are inference tensors, which
autograd refuses to save for backward. They are swapped for ordinary tensors with the same values
(a one-time, value-preserving change). Everything else done here is undone on exit, whether the
run ends, fails or is cancelled: requires_grad flags, and the checkpoint wrappers.

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


@torch.inference_mode(False)
def make_autograd_ready(module: torch.nn.Module) -> int:
    """Replace inference-mode parameters and buffers by equal ordinary tensors; return how many."""
    swapped = 0
    for sub in module.modules():
        for name, p in list(sub.named_parameters(recurse=False)):
            if p.is_inference():
                setattr(sub, name, torch.nn.Parameter(p.clone(), requires_grad=p.requires_grad))
                swapped += 1
        for name, b in list(sub.named_buffers(recurse=False)):
            if b is not None and b.is_inference():
                sub._buffers[name] = b.clone()
                swapped += 1
    return swapped


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
    make_autograd_ready(diffusion_model)
    with frozen(diffusion_model), gradient_checkpointing(diffusion_model, checkpointing):
        yield
