"""The MODEL an inversion and its previews run on: never a dynamic-VRAM patcher.

Why: on NVIDIA with torch >= 2.8, ComfyUI 0.33+ loads models through `ModelPatcherDynamic` (comfy-aimdo): weights
live as views into a virtual VRAM arena and are cast through shared buffers, so they are not the plain parameters
that autograd and our weight aliasing (run_changes.py) expect, and a weight left resident by an earlier inference
pass is an inference tensor. ComfyUI's own nodes that need an ordinary module ask the dynamic patcher for its
non-dynamic delegate (the sampler with hooked conds; TorchCompileModel clones with disable_dynamic=True); so do we.

Cost: the delegate is a second copy of the UNet, loaded from the checkpoint file by ComfyUI once per MODEL and
kept by the dynamic patcher (`non_dynamic_delegate_model`), so a second run reuses it: about 3 GB of RAM for SVD's
UNet in fp16, and the UNet's VRAM while a run goes on (ComfyUI unloads the dynamic copy's resident weights as
needed). Where ComfyUI has no dynamic loading (CPU, AMD, older ComfyUI, --disable-dynamic-vram), nothing changes.
"""
import logging

# Logged at each use, so a user (and benchmarks/dynamic_vram_server.py) can see in the server log that the run
# went through the delegate, and why a second copy of the UNet is in memory.
DELEGATE_LOG = ("Reenact Anything: the MODEL is loaded with dynamic VRAM (comfy-aimdo); running on its "
                "non-dynamic delegate (a second copy of the model, kept for later runs)")


def is_dynamic(model_patcher) -> bool:
    """Feature test, not a version test: ComfyUI before dynamic VRAM has no is_dynamic()."""
    probe = getattr(model_patcher, "is_dynamic", None)
    return bool(callable(probe) and probe())


def non_dynamic(model_patcher):
    """`model_patcher` itself, or ComfyUI's non-dynamic delegate of it (same weights and patches, an ordinary
    ModelPatcher). The patcher passed in is left as it was, apart from ComfyUI's own cache of the delegate."""
    if not is_dynamic(model_patcher):
        return model_patcher
    logging.info(DELEGATE_LOG)
    return model_patcher.get_non_dynamic_delegate()
