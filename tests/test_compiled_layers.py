"""The process's compile cache: one compiled function per (layer function, memory budget), each with a code object
of its own, because dynamo keeps graphs per code object and cannot see the partitioner's budget. Nothing here
compiles (torch.compile is lazy); tests/test_compiled_step.py runs the compiled layers."""
from reenact_core.layer_wrappers import MEMORY_BUDGET, layer_function


def original(compiled_fn):
    return compiled_fn._torchdynamo_orig_callable


def test_budget_and_unbudgeted_graphs_of_the_same_layer_function_never_share_a_cache():
    budget = layer_function("budget", offload=False, compile=True)
    plain = layer_function("off", offload=False, compile=True)
    assert budget is layer_function("budget", offload=False, compile=True), "one compile per key and process"
    assert budget is not plain
    assert original(budget).__code__ is not original(plain).__code__
    assert original(budget).__code__.co_code == original(plain).__code__.co_code, "the same function, copied"
    assert f"{MEMORY_BUDGET:g}".replace(".", "_") in original(budget).__name__


def test_checkpointed_and_offloaded_layers_are_compiled_apart_and_eager_layers_not_at_all():
    compiled = {layer_function(mode, offload=offload, compile=True)
                for mode, offload in (("blocks", False), ("blocks", True), ("off", False), ("budget", False))}
    assert len(compiled) == 4
    eager = layer_function("blocks", offload=False, compile=False)
    assert not hasattr(eager, "_torchdynamo_orig_callable")
