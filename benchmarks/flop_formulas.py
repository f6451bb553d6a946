"""FLOP formulas torch's counter lacks, so a CPU step counts its attention like a GPU step.

torch.utils.flop_counter has formulas for the GPU attention kernels (flash, memory-efficient, cuDNN) but,
in torch 2.14.1, none for the CPU's fused kernel `aten._scaled_dot_product_flash_attention_for_cpu`
and its backward, which is what SDPA runs on a CPU. Without these, a CPU count leaves attention out
entirely (found when the meta count, which routes SDPA to the GPU's kernel, came out higher). The CPU
kernel does the same arithmetic, so it gets the same formulas as the GPU kernels.
"""
import torch
from torch.utils import flop_counter

_CPU_ATTENTION = {
    "_scaled_dot_product_flash_attention_for_cpu": flop_counter.sdpa_flop,
    "_scaled_dot_product_flash_attention_for_cpu_backward": flop_counter.sdpa_backward_flop,
}


def register_cpu_attention_formulas() -> list[str]:
    """Register the missing formulas (idempotent); returns the op names registered by this call."""
    added = []
    for name, formula in _CPU_ATTENTION.items():
        op = getattr(torch.ops.aten, name, None)
        if op is not None and op not in flop_counter.flop_registry:
            flop_counter.register_flop_formula(op, get_raw=True)(formula)  # already shape-wrapped
            added.append(name)
    return added
