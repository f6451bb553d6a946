"""Dynamic VRAM (ComfyUI 0.33+ on NVIDIA): the inversion and its previews run on ComfyUI's non-dynamic delegate.

The CPU cannot make a ModelPatcherDynamic: comfy-aimdo allocates its host buffers through CUDA, and ComfyUI turns a
CPU load into a plain ModelPatcher. The stand-in is therefore a real ModelPatcher that answers is_dynamic() as the
dynamic class does and has that class's own get_non_dynamic_delegate, with a cached_patcher_init factory as
ComfyUI's core loaders register one, so ComfyUI's clone(disable_dynamic=True) path runs as it does on a GPU. What
only a GPU shows (weights in the aimdo arena, a KSampler and a preview between runs) is benchmarks/gpu_check.sh's.
"""
import pytest
import torch

import comfy.model_patcher
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.comfy_pack import run_node
from reenact_testkit.model_state import attachments
from reenact_testkit.node_inputs import optimize_inputs
from reenact_testkit.small_models import make_small_svd

DYNAMIC = getattr(comfy.model_patcher, "ModelPatcherDynamic", None)
pytestmark = pytest.mark.skipif(DYNAMIC is None, reason="this ComfyUI has no dynamic VRAM (ModelPatcherDynamic)")


def dynamic_stand_in(loads: list):
    """A patcher that ComfyUI's code treats as dynamic; its delegate factory counts loads from 'disk'."""
    class CpuDynamicStandIn(comfy.model_patcher.ModelPatcher):
        def is_dynamic(self):
            return True

        get_non_dynamic_delegate = DYNAMIC.get_non_dynamic_delegate

    def load_checkpoint(disable_dynamic=False):
        loads.append(disable_dynamic)
        with torch.inference_mode():
            return make_small_svd(seed=0)

    with torch.inference_mode():
        plain = make_small_svd(seed=0)
    patcher = CpuDynamicStandIn(plain.model, plain.load_device, plain.offload_device, plain.model_size())
    patcher.non_dynamic_delegate_model = None
    patcher.cached_patcher_init = (load_checkpoint, ())
    return patcher


def test_optimize_runs_on_the_delegate_loads_it_once_and_leaves_the_model(small_vae, video):
    loads = []
    model = dynamic_stand_in(loads)
    before, own_forwards = attachments(model), []
    hook = model.model.diffusion_model.register_forward_pre_hook(lambda *_: own_forwards.append(1))
    inputs = optimize_inputs(model=model, vae=small_vae, reference=video["frames"],
                             init_embedding=MotionEmbedding(video["init"]), steps=2, preview_every=2)
    try:
        first, _ = run_node("OptimizeMotionEmbedding", **inputs)
        second, _ = run_node("OptimizeMotionEmbedding", **inputs)
    finally:
        hook.remove()
    assert own_forwards == [], "the dynamic patcher's own UNet ran; the run must use the non-dynamic delegate"
    assert loads == [True], f"expected one non-dynamic load for two runs, got {len(loads)}"
    assert attachments(model) == before
    assert torch.equal(first.tokens, second.tokens)


def test_the_delegate_learns_what_the_plain_model_learns(small_vae, video):
    """Same weights, same seed: the delegate gives the plain patcher's tokens."""
    inputs = dict(vae=small_vae, reference=video["frames"], init_embedding=MotionEmbedding(video["init"]), steps=2)
    on_delegate, _ = run_node("OptimizeMotionEmbedding", **optimize_inputs(model=dynamic_stand_in([]), **inputs))
    with torch.inference_mode():
        plain = make_small_svd(seed=0)
    on_plain, _ = run_node("OptimizeMotionEmbedding", **optimize_inputs(model=plain, **inputs))
    assert torch.allclose(on_delegate.tokens, on_plain.tokens, atol=1e-5, rtol=0)
