"""The process's compiled layer functions, and the compiler settings a compiled run needs.

Compiling costs a minute or more, so compiled functions live for the process and every layer and every run shares
them: dynamo keeps one graph per distinct layer shape and dtype (its guards) and reuses it. What its guards cannot see
is the key of the cache here: which layer function (plain, checkpointed, offloaded) and the memory budget the
partitioner planned the graphs under (a global setting, not an input). Dynamo keeps its graphs on a function's code
object, so each key compiles its own copy of the function's code: graphs planned under one budget are never run
under another, and nobody needs to keep a hand-made copy of a function apart from its twin.

`compiling(memory_budget)` applies the dynamo and partitioner settings for one run and undoes them on exit; it yields
the run's CompileReport (graphs compiled, graph breaks).
"""
import contextlib
import types
from dataclasses import dataclass
from typing import Callable

import torch

# SVD's UNet has a few dozen distinct layer shapes; dynamo's default of 8 graphs per function would silently fall back
# to eager for the rest.
RECOMPILE_LIMIT = 256


@dataclass(frozen=True)
class GraphKey:
    """What makes two compiled layer functions' graphs differ beyond what dynamo guards on."""
    function: Callable
    memory_budget: float


_COMPILED: dict[GraphKey, Callable] = {}


def _own_code(key: GraphKey) -> Callable:
    """`key.function` with a code object of its own, so dynamo's per-code cache holds only this key's graphs."""
    fn = key.function
    name = f"{fn.__name__}__budget_{key.memory_budget:g}".replace(".", "_")
    names = {"co_name": name, **({"co_qualname": name} if hasattr(fn.__code__, "co_qualname") else {})}
    code = fn.__code__.replace(**names)
    return types.FunctionType(code, fn.__globals__, name, fn.__defaults__, fn.__closure__)


def compiled(function: Callable, memory_budget: float = 1.0) -> Callable:
    """The process's one torch.compile of `function` for graphs planned under `memory_budget`."""
    key = GraphKey(function, memory_budget)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(_own_code(key), backend="inductor", dynamic=False)
    return _COMPILED[key]


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
def compiling(memory_budget: float):
    """The dynamo and partitioner settings the compiled layers need, only for the run; yields its CompileReport,
    filled in on exit."""
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    # ComfyUI's layers write into the transformer_options dict; under a checkpoint that is a side effect dynamo
    # would refuse (a graph break) unless told it need not be replayed in the recompute.
    patches = {"skip_fwd_side_effects_in_bwd_under_checkpoint": True}
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                 "accumulated_cache_size_limit"):
        if hasattr(dynamo_config, name):
            patches[name] = max(getattr(dynamo_config, name), RECOMPILE_LIMIT)
    patches = {k: v for k, v in patches.items() if hasattr(dynamo_config, k)}
    report = CompileReport()
    graphs_before, breaks_before = _dynamo_counts()
    try:
        with dynamo_config.patch(**patches), functorch_config.patch(activation_memory_budget=memory_budget):
            yield report
    finally:
        graphs_after, breaks_after = _dynamo_counts()
        new_breaks = {k: v - breaks_before.get(k, 0) for k, v in breaks_after.items() if v > breaks_before.get(k, 0)}
        report.graphs = graphs_after - graphs_before
        report.graph_breaks = sum(new_breaks.values())
        report.break_reasons = tuple(dict.fromkeys(_short_reason(r) for r in new_breaks))
