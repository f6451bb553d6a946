"""The paper's finding on the SVD-like toy: do per-frame tokens, optimised into a cross-attention that never saw a
motion token, steer its motion onto a new first frame?

A case is a held-out reference (a training kind, or one never trained on) and a target first frame with the same
offsets but a new colour, width and start position; scores are toy_fidelity.score's (path matches, path error,
colour kept). The pack's own core path: the init is Inflate CLIP Embedding's (reenact_core.clip_init over the toy's
CLIP vision), inversion is invert_motion (what Optimize Motion Embedding calls), transfer is the Apply Motion
Embedding transform on SVD_img2vid_Conditioning's conditioning of the target, sampled by ComfyUI's KSampler.
Methods:
- "plain": SVD conditioning of the target, no tokens; "oracle": the best of K plain samples, picked against the
  expected path (a ceiling no user can reach: it needs the answer);
- "per_frame": the method, N tokens per slot;
- "shared": one token tied over every slot (frame and temporal);
- "temporal": only the temporal slot learned; the frame slots keep plain SVD's image token.
Inits (INITS) for the learned methods: "clip" (Inflate CLIP Embedding's, the pack's), "null" (the zero token that
SVD's conditioning dropout trained, plus the same noise), "target" (the target's first-frame embedding in every
slot, plus the same noise: a diagnostic, since a user inverts before choosing targets).
`reconstruction_cases` makes each case's target its own reference: can the tokens steer the motion at all, with no
appearance to change? `same_colour_cases` keeps the target's place and size but gives it the reference's colour: is
the learned motion bound to the reference's look?
"""
import torch

from reenact_core.appearance import appearance_copies_for
from reenact_core.clip_init import encode_frames, inflate
from reenact_core.inversion import invert_motion
from reenact_core.motion_conditioning import Look
from reenact_toy import svdlike_toy, svdlike_world, toy_codec, toy_world

from .toy_fidelity import Case, _recover_width, invert_tied, score

INIT_NOISE = 0.1  # Inflate CLIP Embedding's default init_noise (the node's), relative to the embeddings' std
# Cases alternate a trained kind and one never trained on, so a few cases cover both.
CASE_KINDS = ("linear", "square", "circle", "spiral", "stop_and_go", "figure_eight", "bounce")
INITS = ("clip", "null", "target")


def make_cases(count, seed, kinds):
    """`count` cases cycling through `kinds`; each with the reference's fps and motion bucket."""
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(count):
        reference, fps, bucket = svdlike_world.make_video(gen, kind=kinds[i % len(kinds)])
        offsets = reference.path - reference.path[:1]
        state = gen.get_state()
        target = toy_world.make_video(gen, kind=reference.kind, offsets=offsets)
        target.label = reference.label
        case = Case(reference, target, _recover_width(state, offsets))
        case.fps, case.bucket = fps, bucket
        cases.append(case)
    return cases


def reconstruction_cases(cases):
    """Each case with its reference as the target. Colour scores use the target's blob width (the reference's is
    not returned by the world), so only the path scores are read from these."""
    return [_copy_case(c, Case(c.reference, c.reference, c.width)) for c in cases]


def same_colour_cases(cases):
    """Each case's target re-rendered in the reference's colour (same path, place and width as before)."""
    out = []
    for c in cases:
        colour = c.reference.colour
        latents = toy_world.render(c.target.path, colour, c.width) / toy_world.LATENT_SCALE
        target = toy_world.ToyVideo(latents, c.target.path, colour, c.target.kind, c.target.label)
        out.append(_copy_case(c, Case(c.reference, target, c.width)))
    return out


def _copy_case(old, new):
    new.fps, new.bucket = old.fps, old.bucket
    return new


def _embeds(clip_vision, latents):
    with torch.no_grad():
        return encode_frames(clip_vision, toy_codec.latents_to_pixels(latents))


def clip_init(clip_vision, reference_latents, tokens_per_frame, seed, noise=INIT_NOISE):
    """(F+1, N, D) as Inflate CLIP Embedding makes it from the reference's frames."""
    return inflate(_embeds(clip_vision, reference_latents), reference_latents.shape[0], tokens_per_frame, noise, seed)


def initial_tokens(clip_vision, case, tokens_per_frame, seed, init="clip"):
    """The tokens an inversion starts from (INITS); every init carries the same seeded noise (the reference's
    embeddings' scale, as Inflate CLIP Embedding draws it)."""
    ref = case.reference.latents
    frames, embeds = ref.shape[0], _embeds(clip_vision, ref)
    clip = inflate(embeds, frames, tokens_per_frame, INIT_NOISE, seed)
    if init == "clip":
        return clip
    noise = clip - inflate(embeds, frames, tokens_per_frame, 0.0, seed)
    if init == "null":
        return noise
    if init == "target":
        target = _embeds(clip_vision, case.target.latents[:1])
        return inflate(target, frames, tokens_per_frame, 0.0, seed) + noise
    raise ValueError(f"expected an init in {', '.join(INITS)}, got {init!r}")


def method_tokens(patcher, clip_vision, case, method, n, settings, init="clip"):
    """Tokens for one case, learned from its reference (None for plain and oracle)."""
    ref = case.reference.latents
    frames = ref.shape[0]
    settings = _with_case(settings, case)
    if method in ("plain", "oracle"):
        return None, []
    init = initial_tokens(clip_vision, case, n, settings.seed, init)
    if method == "per_frame":
        return invert(patcher, case, init, settings, clip_vision=clip_vision)
    if method == "shared":
        return invert_tied(patcher, ref, settings, [init[:1, :1]], lambda p: p[0].expand(frames + 1, 1, -1))
    if method == "temporal":
        image_token = clip_init(clip_vision, ref[:1], 1, settings.seed, 0.0)[:1]  # plain SVD's frame token
        return invert_tied(patcher, ref, settings, [init[-1:, :1]],
                           lambda p: torch.cat([image_token.expand(frames, 1, -1), p[0]]))
    raise ValueError(f"expected a method in plain, oracle, per_frame, shared or temporal, got {method!r}")


def invert(patcher, case, init, settings, stats=None, clip_vision=None):
    """invert_motion on the case's reference as Optimize Motion Embedding runs it, appearance copies included (made
    from the reference's frames and encoded by the toy's VAE, through the node's own function; with clip_vision
    connected, as the node's optional input, each copy's appearance slot holds its own look)."""
    ref = case.reference.latents
    copies = appearance_copies_for(toy_codec.make_toy_vae(), toy_codec.latents_to_pixels(ref), settings, clip_vision)
    image = reference_image(clip_vision, case) if settings.appearance_slot else None
    return invert_motion(patcher, ref, ref[:1], init, settings=settings, stats=stats, appearance_copies=copies,
                         reference_image=image)


def _with_case(settings, case):
    from dataclasses import replace
    return replace(settings, fps=case.fps, motion_bucket_id=case.bucket)


def reference_image(clip_vision, case):
    """The reference's first-frame image embedding (D,), as Inflate CLIP Embedding keeps it in the motion file."""
    return _embeds(clip_vision, case.reference.latents[:1])[0]


def transfer(patcher, clip_vision, case, tokens, seed, temporal_only=False, swap_look=False, slot=False):
    """Sample the target with `tokens` (None: plain) and score it. temporal_only: the frame slots get the target's
    own image token, as plain SVD's, and only the temporal slot comes from `tokens`. swap_look: Apply Motion
    Embedding's look swap (the reference's image embedding swapped for the target's); slot: the tokens were learned
    with an appearance slot (settings.appearance_slot)."""
    if temporal_only:
        image = toy_codec.latents_to_pixels(case.target.latents[:1])
        pooled, _ = svdlike_toy.first_frame_conditioning(clip_vision, image, torch.zeros(1))
        tokens = torch.cat([pooled.expand(tokens.shape[0] - 1, 1, -1), tokens[-1:]])
    sampled = svdlike_toy.sample_video(patcher, clip_vision, case.target.latents[:1], tokens, seed, fps=case.fps,
                                       motion_bucket_id=case.bucket,
                                       look=Look(reference_image(clip_vision, case), swap=swap_look, slot=slot)
                                       if swap_look or slot else None)
    return score(sampled, case)


def run_case(patcher, clip_vision, case, method, n, settings, sample_seed, oracle_samples=8, init="clip"):
    tokens, losses = method_tokens(patcher, clip_vision, case, method, n, settings, init)
    if method == "oracle":
        tries = [transfer(patcher, clip_vision, case, None, sample_seed + k) for k in range(oracle_samples)]
        result = min(tries, key=lambda r: r["mean_err"])
    else:
        result = transfer(patcher, clip_vision, case, tokens, sample_seed, temporal_only=method == "temporal")
    result["final_loss"] = sum(losses[-20:]) / max(1, len(losses[-20:])) if losses else None
    return result


def plain_motion(patcher, clip_vision, video, fps, bucket, seed) -> dict:
    """What the toy does unprompted from `video`'s first frame: is frame 0 kept, how far and how evenly it moves."""
    sampled = svdlike_toy.sample_video(patcher, clip_vision, video.latents[:1], None, seed, fps=fps,
                                       motion_bucket_id=bucket)
    tracked = toy_world.track(sampled, video.colour)
    steps = (tracked[1:] - tracked[:-1]).norm(dim=1)
    x0 = (video.latents[0] * toy_world.LATENT_SCALE).flatten()
    first = float(torch.corrcoef(torch.stack([(sampled[0] * toy_world.LATENT_SCALE).flatten(), x0]))[0, 1])
    return {"bucket": bucket, "first_frame_corr": first, "start_err": float((tracked[0] - video.path[0]).norm()),
            "speed": float(steps.mean()), "net": float((tracked[-1] - tracked[0]).norm()),
            "jerk": float((steps[1:] - steps[:-1]).abs().mean())}

