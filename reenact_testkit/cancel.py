"""ComfyUI's Cancel at a chosen step of the pack's run, and the check that a cancelled run left the MODEL as it was."""
import contextlib
import sys

import pytest
import torch

import comfy.model_management as mm

from reenact_core.motion_embedding import MotionEmbedding

from .comfy_pack import run_node
from .model_state import attachments, fixed_denoised_output
from .node_inputs import optimize_inputs

PACK_CHECKERS = ("nodes.optimize", "reenact_core.motion_preview")  # the pack's modules that check for Cancel


@contextlib.contextmanager
def cancel_at_check(n: int):
    """ComfyUI's own interrupt flag (the Cancel button) set at the pack's n-th interrupt check (one per
    optimisation step, one per preview sampler step); yields the list of those checks, so a test can say where
    the run stopped. Checks made by ComfyUI itself are not counted: since 0.33 its ops check the flag before
    every layer, so counting them would tie a test to the model's layer count and the ComfyUI version."""
    real, seen = mm.throw_exception_if_processing_interrupted, []

    def check():
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.endswith(PACK_CHECKERS):
            seen.append(caller)
            if len(seen) == n:
                mm.interrupt_current_processing(True)
        real()

    mm.throw_exception_if_processing_interrupted = check
    try:
        yield seen
    finally:
        mm.throw_exception_if_processing_interrupted = real
        mm.interrupt_current_processing(False)


def cancel_node_run_at_step_two(model, vae, video, **options):
    """Cancel (ComfyUI's interrupt flag) during step 2 of an Optimize node run: it stops there, and the MODEL holds
    the same weight tensors, wrappers, flags and patches as before and gives bit-identical outputs."""
    before_output, before = fixed_denoised_output(model, video), attachments(model)
    with cancel_at_check(2) as seen, pytest.raises(mm.InterruptProcessingException):
        run_node("OptimizeMotionEmbedding", **optimize_inputs(model=model, vae=vae, reference=video["frames"],
                                                              init_embedding=MotionEmbedding(video["init"]),
                                                              steps=50, **options))
    assert len(seen) == 2
    assert attachments(model) == before
    assert torch.equal(fixed_denoised_output(model, video), before_output)
