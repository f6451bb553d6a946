"""How each UNet layer runs in an inversion step: checkpointed, compiled, with its saved tensors on the CPU.

One context manager puts a wrapper on each target layer's `forward` and takes it off again on exit, whether
the run ends, fails or is cancelled. The wrappers, innermost first:

- checkpoint (non-reentrant): the layer's activations are recomputed in backward instead of kept.
- offload (low_vram): the layer's input is kept on the CPU for the recompute, not on the GPU. The copy to the
  CPU is an ordinary differentiable op, so the gradient flows back through it; the checkpointed function
  moves the input back to the GPU when it runs, in the forward and again in the recompute.
- compile (torch.compile, inductor; compiled_layers.py): the layer's norm and elementwise chains are fused (their
  share of the step's GPU time: benchmarks/README.md, the compiled-step predictions). The checkpoint sits inside
  the compiled region, so inductor's partitioner plans the recompute. With checkpointing "budget" there is no
  checkpoint: the partitioner keeps MEMORY_BUDGET of what it would save and recomputes the cheapest ops (norms,
  elementwise) to stay under it.
"""
import contextlib
import functools

import torch
import torch.utils.checkpoint

from .compiled_layers import CompileReport, compiled, compiling

CHECKPOINTING_MODES = ("blocks", "layers", "off", "budget")
COMPILE_MODES = ("off", "on")
# Fraction of what the partitioner would save that checkpointing "budget" keeps. Fixed, not a setting: the
# compiled graphs of a process are planned under one budget. Chosen to land near "blocks"' peak at
# 14 x 576 x 1024; the numbers behind it: benchmarks/README.md, "Why MEMORY_BUDGET is 0.15".
MEMORY_BUDGET = 0.15


def _outermost(module, kinds):
    """Modules of the given kinds, not descending into a match (a VideoResBlock holds a ResBlock)."""
    found = []
    for child in module.children():
        if isinstance(child, kinds):
            found.append(child)
        else:
            found.extend(_outermost(child, kinds))
    return found


def block_layers(diffusion_model):
    """Every layer the UNet's input/middle/output blocks hold (ResBlocks, whole spatial-video transformers,
    down/upsamplers). Not the blocks themselves: UNetModel.forward never calls a TimestepEmbedSequential,
    it iterates its layers (forward_timestep_embed), so a wrapper on the block's forward would never run."""
    blocks = [*diffusion_model.input_blocks, diffusion_model.middle_block, *diffusion_model.output_blocks]
    return [layer for block in blocks for layer in block]


def checkpoint_targets(diffusion_model, mode: str):
    """The layers a checkpointing mode recomputes ('layers' is finer: each ResBlock and transformer block)."""
    if mode in ("off", "budget"):
        return []
    if mode == "blocks":
        return block_layers(diffusion_model)
    if mode == "layers":
        from comfy.ldm.modules.attention import BasicTransformerBlock
        from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock
        return _outermost(diffusion_model, (ResBlock, BasicTransformerBlock))
    raise ValueError(f"expected checkpointing mode in {CHECKPOINTING_MODES}, got {mode!r}")


def wrap_targets(diffusion_model, checkpointing: str, compile: bool):
    """Compiled runs wrap the block layers even without checkpointing: those are what gets compiled."""
    targets = checkpoint_targets(diffusion_model, checkpointing)
    return targets or (block_layers(diffusion_model) if compile else [])


def _layer_forward(module, *args, **kwargs):
    return type(module).forward(module, *args, **kwargs)


def _offloaded_forward(module, device, x_on_cpu, *args, **kwargs):
    return type(module).forward(module, x_on_cpu.to(device, non_blocking=True), *args, **kwargs)


def _checkpointed(module, *args, **kwargs):
    return torch.utils.checkpoint.checkpoint(_layer_forward, module, *args, use_reentrant=False, **kwargs)


def _checkpointed_offloaded(module, x, *args, **kwargs):
    x_on_cpu = x.to("cpu")
    return torch.utils.checkpoint.checkpoint(_offloaded_forward, module, x.device, x_on_cpu, *args,
                                             use_reentrant=False, **kwargs)


def memory_budget(checkpointing: str) -> float:
    """The partitioner's budget a compiled run's graphs are planned under: 1.0 (keep what it would) but for budget."""
    return MEMORY_BUDGET if checkpointing == "budget" else 1.0


def layer_function(checkpointing: str, *, offload: bool, compile: bool):
    """What each wrapped layer's forward becomes."""
    if checkpointing in ("off", "budget"):
        if offload:
            raise ValueError(f"expected checkpointing blocks or layers with the layer inputs offloaded, "
                             f"got {checkpointing}")
        fn = _layer_forward
    else:
        fn = _checkpointed_offloaded if offload else _checkpointed
    return compiled(fn, memory_budget(checkpointing)) if compile else fn


@contextlib.contextmanager
def wrapped_layers(diffusion_model, checkpointing: str, *, compile: bool = False, offload: bool = False):
    """Wrap each target layer's forward as the mode asks, with the compiler's settings while compiled; yields the
    run's CompileReport (compiled_layers.py; empty when not compiling). Everything is undone on exit."""
    compile = compile or checkpointing == "budget"  # the compiler plans a budget's recompute
    targets = wrap_targets(diffusion_model, checkpointing, compile)
    fn = layer_function(checkpointing, offload=offload, compile=compile)
    saved = [(m, m.__dict__.get("forward")) for m in targets]
    compiler = compiling(memory_budget(checkpointing)) if compile else contextlib.nullcontext(CompileReport())
    try:
        with compiler as report:
            for m in targets:
                m.forward = functools.partial(fn, m)
            yield report
    finally:
        for m, previous in saved:
            if previous is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = previous
