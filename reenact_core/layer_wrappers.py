"""How each UNet layer runs in an inversion step: checkpointed, compiled, with its saved tensors on the CPU.

One context manager puts a wrapper on each target layer's `forward` and takes it off again on exit, whether
the run ends, fails or is cancelled. The wrappers, innermost first:

- checkpoint (non-reentrant): the layer's activations are recomputed in backward instead of kept.
- offload (low_vram): the layer's input is kept on the CPU for the recompute, not on the GPU. The copy to the
  CPU is an ordinary differentiable op, so the gradient flows back through it; the checkpointed function
  moves the input back to the GPU when it runs, in the forward and again in the recompute.
- compile (torch.compile, inductor): the layer's norm and elementwise chains are fused (about 43% of the
  step's GPU time was these, ../benchmarks/README.md). The checkpoint sits inside the compiled region, so
  inductor's partitioner plans the recompute. With checkpointing "budget" there is no checkpoint: the
  partitioner keeps `torch._functorch.config.activation_memory_budget` of what it would save and recomputes
  the cheapest ops (norms, elementwise) to stay under it.

Compiled functions are made once per process and shared by every layer (dynamo keeps one graph per distinct
layer shape and guards on the rest), so a second run in the same ComfyUI process does not compile again.
`CompileReport` counts the graphs compiled and the graph breaks seen during a run.
"""
import contextlib
import functools
from dataclasses import dataclass

import torch
import torch.utils.checkpoint

CHECKPOINTING_MODES = ("blocks", "layers", "off", "budget")
COMPILE_MODES = ("off", "on")
# Fraction of what the partitioner would save that checkpointing "budget" keeps. Fixed, not a setting: the
# compiled graphs of a process are planned under one budget. Chosen to land near "blocks"' peak at
# 14 x 576 x 1024 (count_step.py: 47.7 GB saved without recompute, about 6.6 GB of room beside the
# weights at blocks' measured 10.4 GB peak).
MEMORY_BUDGET = 0.15
# SVD's UNet has a few dozen distinct layer shapes; dynamo's default of 8 graphs per function would
# silently fall back to eager for the rest.
RECOMPILE_LIMIT = 256


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


def _budgeted_forward(module, *args, **kwargs):
    """_layer_forward under another name: dynamo caches graphs per function, and these are partitioned
    under the memory budget."""
    return type(module).forward(module, *args, **kwargs)


def _checkpointed_offloaded(module, x, *args, **kwargs):
    x_on_cpu = x.to("cpu")
    return torch.utils.checkpoint.checkpoint(_offloaded_forward, module, x.device, x_on_cpu, *args,
                                             use_reentrant=False, **kwargs)


_COMPILED: dict = {}


def _compiled(fn):
    """One torch.compile of `fn` per process: its graphs are shared by every layer and every run."""
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, backend="inductor", dynamic=False)
    return _COMPILED[fn]


def layer_function(checkpointing: str, offload: bool, compile: bool):
    if checkpointing == "budget":
        return _compiled(_budgeted_forward)
    if checkpointing == "off":
        if offload:
            raise ValueError("expected checkpointing blocks or layers with the layer inputs offloaded, got off")
        fn = _layer_forward
    else:
        fn = _checkpointed_offloaded if offload else _checkpointed
    return _compiled(fn) if compile else fn


@dataclass
class CompileReport:
    """What torch.compile did during a run: graphs compiled (0 on a second run) and graph breaks."""
    graphs: int = 0
    graph_breaks: int = 0
    break_reasons: tuple = ()

    @classmethod
    def merged(cls, reports) -> "CompileReport":
        """One report for a run whose layers were wrapped more than once (it pauses for previews)."""
        return cls(sum(r.graphs for r in reports), sum(r.graph_breaks for r in reports),
                   tuple(dict.fromkeys(reason for r in reports for reason in r.break_reasons)))


def _short_reason(reason: str) -> str:
    """dynamo's graph-break reason, cut to the line that says what it could not trace."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    return next((line for line in lines if line.startswith("Explanation:")), lines[0] if lines else reason)[:300]


def _dynamo_counts():
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"], dict(counters["graph_break"])


@contextlib.contextmanager
def compile_settings(memory_budget: float):
    """The dynamo and partitioner settings the compiled layers need, only for the run."""
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    patches = {"skip_fwd_side_effects_in_bwd_under_checkpoint": True}
    # ComfyUI's layers write into the transformer_options dict; under a checkpoint that is a side effect
    # dynamo would refuse (a graph break) unless told it need not be replayed in the recompute.
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                 "accumulated_cache_size_limit"):
        if hasattr(dynamo_config, name):
            patches[name] = max(getattr(dynamo_config, name), RECOMPILE_LIMIT)
    patches = {k: v for k, v in patches.items() if hasattr(dynamo_config, k)}
    with dynamo_config.patch(**patches), functorch_config.patch(activation_memory_budget=memory_budget):
        yield


@contextlib.contextmanager
def wrapped_layers(diffusion_model, checkpointing: str, compile: bool = False, offload: bool = False):
    """Wrap each target layer's forward as the mode asks; yields a CompileReport filled in on exit."""
    compile = compile or checkpointing == "budget"  # the compiler plans a budget's recompute
    targets = wrap_targets(diffusion_model, checkpointing, compile)
    fn = layer_function(checkpointing, offload, compile)
    report = CompileReport()
    saved = [(m, m.__dict__.get("forward")) for m in targets]
    graphs_before, breaks_before = _dynamo_counts() if compile else (0, {})
    settings = compile_settings(MEMORY_BUDGET if checkpointing == "budget" else 1.0) if compile \
        else contextlib.nullcontext()
    try:
        with settings:
            for m in targets:
                m.forward = functools.partial(fn, m)
            yield report
    finally:
        for m, previous in saved:
            if previous is None:
                m.__dict__.pop("forward", None)
            else:
                m.forward = previous
        if compile:
            graphs_after, breaks_after = _dynamo_counts()
            new_breaks = {k: v - breaks_before.get(k, 0) for k, v in breaks_after.items()
                          if v > breaks_before.get(k, 0)}
            report.graphs = graphs_after - graphs_before
            report.graph_breaks = sum(new_breaks.values())
            report.break_reasons = tuple(dict.fromkeys(_short_reason(r) for r in new_breaks))
