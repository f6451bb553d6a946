"""Motion-transfer fidelity on the toy SVD: invert a reference video, apply it to another first frame.

The pack's own core path, entered at the latent level (the toy has no VAE, so the IMAGE-taking nodes
are skipped; they are tested elsewhere on small models and in the end-to-end server tests):
- inversion: reenact_core.inversion.invert_motion, the function OptimizeMotionEmbedding calls;
- transfer: reenact_core.motion_conditioning (via toy_svd.conditioning_for), the transform
  ApplyMotionEmbedding uses, then ComfyUI's common_ksampler (toy_svd.sample_video).

A case is a reference video and a target first frame with a new colour, width and start position;
the target's expected path is the reference's path displaced to the target's start.
Methods: "plain" (null token, no inversion), "shared" (one token tied over all F+1 slots, F'=1),
"per_frame" with N tokens per slot (the full method; the toy was trained with N=1).
Init: the null token (all zeros, the toy's "no motion information") plus seeded noise of std 0.01;
the toy has no CLIP to give an image-derived init.
"""
from dataclasses import dataclass, replace

import torch

from reenact_core.inversion import DenoisingObjective, InversionSettings, draw_sigma_and_noise, invert_motion
from reenact_core.memory_mode import plan_run
from reenact_core.run_changes import changed_for_run

from reenact_toy import toy_codec, toy_svd, toy_world

from .comfy_pack import run_node
from .node_inputs import widget_defaults

INIT_NOISE = 0.01


@dataclass
class Case:
    reference: toy_world.ToyVideo
    target: toy_world.ToyVideo      # same offsets as the reference, new colour, width and start
    width: float                    # the target blob's width, for the appearance score


def make_cases(count, seed, size=toy_world.SIZE):
    """`count` (reference, target) pairs; targets share the reference's offsets, nothing else."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for _ in range(count):
        reference = toy_world.make_video(gen, size=size)
        offsets = reference.path - reference.path[:1]
        state = gen.get_state()
        target = toy_world.make_video(gen, kind=reference.kind, offsets=offsets, size=size)
        width = _recover_width(state, offsets)
        target.label = reference.label
        cases.append(Case(reference, target, width))
    return cases


def _recover_width(state, offsets):
    """The width make_video drew (it does not return it): replay the generator from `state`."""
    gen = torch.Generator()
    gen.set_state(state)
    toy_world.random_colour(gen)
    return 1.0 + 0.6 * float(torch.rand((), generator=gen))


def init_tokens(frames, n, seed, dim=toy_world.CONTEXT_DIM, noise=INIT_NOISE):
    """(F+1, N, D) neutral init: the null token plus seeded noise (std `noise`)."""
    gen = torch.Generator().manual_seed(seed)
    return noise * torch.randn(frames + 1, n, dim, generator=gen)


def invert_tied(patcher, reference_latents, settings: InversionSettings, params, tokens_of):
    """invert_motion's loop (its objective, sigma/noise draws, AdamW and settings) over other parameters:
    `tokens_of(params)` gives the (F+1, N, D) tokens. For the baselines only (one shared token, the temporal slot
    alone); the method itself runs invert_motion, which is not changed for them."""
    import comfy.model_management
    plan = plan_run(settings.memory_mode, settings.checkpointing, settings.precision, patcher.model,
                    patcher.load_device)
    comfy.model_management.load_models_gpu([patcher])
    objective = DenoisingObjective(patcher, reference_latents, reference_latents[:1], settings)
    generator = torch.Generator().manual_seed(settings.seed)
    params = [p.detach().clone().requires_grad_(True) for p in params]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    losses = []
    with torch.inference_mode(False), torch.enable_grad(), changed_for_run(objective.model, plan):
        for _ in range(settings.steps):
            sigma, noise = draw_sigma_and_noise(generator, objective.x0.shape, settings,
                                                objective.model.model_sampling)
            loss = objective.loss(objective.model_conds(tokens_of(params)), sigma, noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    with torch.no_grad():
        return tokens_of(params).detach().clone(), losses


def invert_shared(patcher, reference_latents, condition_latent, settings: InversionSettings):
    """F'=1: one (1, 1, D) token tied over all F+1 slots, from the toy's neutral init."""
    frames = reference_latents.shape[0]
    return invert_tied(patcher, reference_latents, settings, [init_tokens(0, 1, settings.seed)[:1]],
                       lambda p: p[0].expand(frames + 1, 1, -1))


def method_tokens(patcher, case, method, n, settings, init_noise=INIT_NOISE):
    """Tokens for one case: None for plain, else inverted from the reference video."""
    ref = case.reference.latents
    if method == "plain":
        return None, []
    if method == "shared":
        return invert_shared(patcher, ref, ref[:1], settings)
    if method == "per_frame":
        return invert_motion(patcher, ref, ref[:1], init_tokens(ref.shape[0], n, settings.seed, noise=init_noise),
                             settings=settings)
    if method == "true":
        return toy_world.motion_embedding_tokens(case.reference.path), []
    raise ValueError(f"expected a method in plain, shared, per_frame or true, got {method!r}")


def blob_colour(frame, centre, width):
    """Least-squares colour (4,) of a Gaussian blob of `width` at `centre` in one model-space frame."""
    g = toy_world.render(centre[None], torch.ones(1), width, frame.shape[-1])[0, 0]
    return torch.einsum("chw,hw->c", frame, g) / g.pow(2).sum()


def _cos(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def score(sampled, case):
    """Motion and appearance scores of one transferred video against the case's expected path."""
    target, reference = case.target, case.reference
    tracked = toy_world.track(sampled, target.colour)
    mean_err, end_err = toy_world.motion_errors(tracked, target.path)
    x = sampled * toy_world.LATENT_SCALE
    colours = torch.stack([blob_colour(x[f], tracked[f], case.width) for f in range(x.shape[0])])
    est = colours.mean(0)
    rendered = toy_world.render(tracked, target.colour, case.width, x.shape[-1])
    frame_corr = [float(torch.corrcoef(torch.stack([x[f].flatten(), rendered[f].flatten()]))[0, 1])
                  for f in range(x.shape[0])]
    first = float(torch.corrcoef(torch.stack([x[0].flatten(),
                                              (target.latents[0] * toy_world.LATENT_SCALE).flatten()]))[0, 1])
    return {"match": toy_world.matches(tracked, target.path), "mean_err": mean_err, "end_err": end_err,
            "colour_cos_target": _cos(est, target.colour), "colour_cos_reference": _cos(est, reference.colour),
            "colour_ratio": float(est.norm() / target.colour.norm()),
            "appearance_corr": sum(frame_corr) / len(frame_corr), "first_frame_corr": first}


def run_case(patcher, case, method, n, settings, sample_seed, init_noise=INIT_NOISE):
    """Invert (unless plain), transfer to the target's first frame, sample and score."""
    tokens, losses = method_tokens(patcher, case, method, n, settings, init_noise)
    sampled = toy_svd.sample_video(patcher, case.target.latents[:1], tokens, sample_seed)
    result = score(sampled, case)
    result["final_loss"] = sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None
    return result


def summarise(results):
    """Means over cases: match fraction, path errors and appearance scores."""
    keys = [k for k in results[0] if k != "final_loss"]
    out = {k: sum(float(r[k]) for r in results) / len(results) for k in keys}
    out["cases"] = len(results)
    return out


# Fixed-length runs: the fidelity tables compare step counts, so the stop rule stays off here.
DEFAULT_SETTINGS = InversionSettings(steps=200, learning_rate=3e-2, checkpointing="off", precision="fp32",
                                     stop_when_learned=False)


def settings_with(**changes):
    return replace(DEFAULT_SETTINGS, **changes)


# --- The same transfer through the pack's nodes, as a user's graph runs it -------------------------------

NODE_SIZE = 16           # latent side for node runs: 128 px, the smallest multiple of 64 the nodes accept
NODE_SAMPLER = dict(steps=toy_svd.SAMPLE_STEPS, cfg=toy_svd.SAMPLE_CFG, sampler_name="euler", scheduler="karras")


def invert_through_nodes(patcher, vae, case, steps, seed, learning_rate=3e-2, tokens_per_frame=1,
                         init_noise=INIT_NOISE):
    """LoadMotionReference -> (toy init) -> OptimizeMotionEmbedding on the case's reference, as pictures.

    Needs the pack loaded by ComfyUI's loader (its nodes registered). The init is the toy's neutral
    one (null token plus noise), in place of Inflate CLIP Embedding: the toy has no CLIP.
    """
    from reenact_core.motion_embedding import MotionEmbedding
    video = toy_codec.latents_to_pixels(case.reference.latents)
    frames_n, height, width = video.shape[:3]
    frames, _, _, name = run_node("LoadMotionReference", video="", start_frame=0, frame_count=frames_n, stride=1,
                                   target_fps=0.0, width=width, height=height, resize_mode="crop", images=video,
                                   images_fps=float(toy_svd.FPS))
    init = MotionEmbedding(init_tokens(frames_n, tokens_per_frame, seed, noise=init_noise), {"init": "toy-null"})
    inputs = dict(widget_defaults("OptimizeMotionEmbedding"), model=patcher, vae=vae, reference=frames,
                  init_embedding=init, steps=steps, learning_rate=learning_rate, seed=seed, fps=toy_svd.FPS,
                  motion_bucket_id=toy_svd.MOTION_BUCKET, gradient_checkpointing="off", precision="fp32",
                  source_name=name)
    embedding, _ = run_node("OptimizeMotionEmbedding", **inputs)
    return embedding


def transfer_through_nodes(patcher, vae, case, embedding, seed, strength=1.0):
    """Toy conditioning -> ApplyMotionEmbedding -> KSampler -> VAEDecode on the case's target; scored.

    strength 0 is the plain baseline: ApplyMotionEmbedding then puts the null token in every slot.
    """
    from reenact_toy.comfy_nodes import ToyImg2VidConditioning
    target = toy_codec.latents_to_pixels(case.target.latents[:1])
    with torch.inference_mode():
        positive, negative, latent = ToyImg2VidConditioning.execute(vae, target, case.target.latents.shape[0]).args
    positive, negative = run_node("ApplyMotionEmbedding", positive=positive, negative=negative,
                                   motion_embedding=embedding, latent=latent, strength=strength,
                                   use_embedding_fps_and_bucket=True)
    samples, = run_node("KSampler", model=patcher, seed=seed, positive=positive, negative=negative,
                         latent_image=latent, denoise=1.0, **NODE_SAMPLER)
    images, = run_node("VAEDecode", samples=samples, vae=vae)
    return score(toy_codec.pixels_to_latents(images), case)
