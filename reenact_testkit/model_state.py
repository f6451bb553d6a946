"""What a run could leave behind on a MODEL, and what the MODEL computes, for the tests that check that a run
(finished, failed, cancelled, compiled, offloaded) leaves the MODEL exactly as it found it.

Take both before a run and compare after: `attachments` must be equal and `fixed_denoised_output` bit-identical.
`video` is a test's reference dict: latents (F, 4, h, w), condition (1, 4, h, w) and init tokens (F+1, N, D).
"""
import torch

from reenact_core.inversion import DenoisingObjective, InversionSettings


def fixed_denoised_output(model, video):
    """The UNet's denoised output for fixed inputs (the video's init tokens, sigma 2, seed-0 noise), through the
    objective's own apply_model call."""
    objective = DenoisingObjective(model, video["latents"], video["condition"], InversionSettings())
    noise = torch.randn(objective.x0.shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return objective.denoise(objective.model_conds(video["init"]), 2.0, noise).clone()


def attachments(model):
    """Everything a run could leave on the MODEL: weight tensors, forward wrappers, cast switches, flags,
    patches, hooks."""
    dm = model.model.diffusion_model
    return dict(
        weights=[(name, id(t), t.data_ptr()) for name, t in [*dm.named_parameters(), *dm.named_buffers()]],
        forwards=[name for name, m in dm.named_modules() if "forward" in m.__dict__],
        manual_cast=model.model.__dict__.get("manual_cast_dtype"),
        cast_flags=[m.__dict__.get("comfy_cast_weights") for m in dm.modules()],
        requires_grad=[p.requires_grad for p in model.model.parameters()],
        grads=[p.grad is not None for p in model.model.parameters()],
        hooks=sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in dm.modules()),
        patches=sorted(model.patches), object_patches=sorted(model.object_patches),
        wrappers=sorted(model.wrappers), transformer_options=sorted(model.model_options.get("transformer_options", {})),
    )
