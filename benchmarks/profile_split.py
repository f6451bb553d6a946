"""Where a step's time goes, by op class: attention, matmul, conv, norm, elementwise, other.

On a GPU the classes are read from the kernels' names (self device time), so a compiled step, whose aten ops
become fused Triton kernels, is split the same way as an eager one: a fused kernel that holds a norm
reduction counts as norm, any other fused pointwise kernel as elementwise. On a CPU (the smoke test) the
aten ops' self CPU time is split instead.
"""
import re

CLASSES = ("attention", "matmul", "conv", "norm", "elementwise", "other")
# Checked in order: cuDNN's convolution kernels are implicit GEMMs, so conv comes before matmul, and a fused
# Triton kernel named after a norm is a norm before it is elementwise.
PATTERNS = (
    ("attention", r"attention|flash|fmha|sdpa|softmax"),
    ("conv", r"conv|fprop|dgrad|wgrad|implicit_gemm|winograd"),
    ("matmul", r"\bmm\b|addmm|bmm|matmul|linear|gemm|nvjet|cutlass|xmma|cublas|sm\d+_"),
    ("norm", r"group_norm|layer_norm|native_norm|_norm|welford|var_mean"),
    ("elementwise", r"triton_|elementwise|vectorized|unrolled|\b(mul|add|sub|div|copy|gelu|silu|sigmoid|cat|"
                    r"where|fill|clone|to_copy|exp|neg|pow|sum|mean)|reduce_kernel|CatArrayBatched"),
)


def op_class(name: str) -> str:
    lowered = name.lower()
    for cls, pattern in PATTERNS:
        if re.search(pattern, lowered):
            return cls
    return "other"


def time_split(prof, device: str) -> dict:
    """Share of self time per class, plus the total in ms, from a finished torch.profiler.profile."""
    from torch.autograd import DeviceType
    totals = dict.fromkeys(CLASSES, 0.0)
    for event in prof.key_averages():
        if device == "cuda":
            if event.device_type != DeviceType.CUDA:
                continue
            us = event.self_device_time_total
        else:
            if not event.key.startswith("aten::") or event.key in ("aten::empty", "aten::empty_strided"):
                continue
            us = event.self_cpu_time_total
        totals[op_class(event.key)] += us
    total = sum(totals.values()) or 1.0
    split = {cls: round(us / total, 4) for cls, us in totals.items()}
    split["total_ms"] = round(total / 1000, 2)
    return split
