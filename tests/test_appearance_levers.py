"""The levers against a motion bound to the reference's look: appearance augmentation, the debiased and
frame-difference loss terms, and the look swap at transfer. Real nodes on the small SVD, VAE and CLIP vision."""
import math

import pytest
import torch

import comfy.model_management as mm
from reenact_core import appearance
from reenact_core.embedding_file import load_embedding, save_embedding
from reenact_core.errors import ReenactError
from reenact_core.inversion import DenoisingObjective, InversionSettings, edm_loss_weight
from reenact_core.motion_conditioning import SWAP_LOOK
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.cancel import cancel_at_check
from reenact_testkit.comfy_graph import svd_conditioning
from reenact_testkit.comfy_pack import node_class, run_node
from reenact_testkit.media import moving_square_frames
from reenact_testkit.node_inputs import optimize_inputs

FRAMES, DIM = 4, 64
STRONG = appearance.AppearanceChange(hue=0.3, saturation=1.5, brightness=0.9, contrast=1.3, zoom=1.2, shift_x=0.1,
                                     shift_y=-0.05)


@pytest.fixture(scope="module")
def frames():
    """A moving coloured square, (F, 128, 128, 3) in [0, 1]: room for geometry augmentation at full strength."""
    return torch.stack([torch.from_numpy(f).float() / 255 for f in moving_square_frames(count=FRAMES, size=(128, 128))])


def test_a_change_is_the_same_on_every_frame(frames):
    still = frames[:1].expand(FRAMES, -1, -1, -1)
    changed = appearance.apply_change(still, STRONG)
    assert all(torch.equal(changed[0], changed[f]) for f in range(FRAMES)), "one change for the whole clip"
    assert (changed - still).abs().mean() > 0.02, "the change changes the look"
    # Frames that differ elsewhere: a patch they share comes out the same in both (one colour change for the clip,
    # not one per frame: torchvision's own contrast would mix each frame with its own mean).
    two = torch.rand(2, 64, 64, 3, generator=torch.Generator().manual_seed(2))
    two[1, :16, :16] = two[0, :16, :16]
    colour = appearance.apply_change(two, appearance.AppearanceChange(hue=0.3, saturation=1.5, brightness=0.9,
                                                                      contrast=1.3))
    assert torch.equal(colour[0, :16, :16], colour[1, :16, :16])


def test_geometry_keeps_relative_motion():
    """A 2-px-per-frame shift stays a 2-px shift (times the zoom) after a zoom and a shift of the clip."""
    size, frames = 96, torch.zeros(3, 96, 96, 3)
    for f in range(3):
        frames[f, 40:56, 30 + 8 * f:46 + 8 * f] = 1.0
    changed = appearance.apply_change(frames, appearance.AppearanceChange(zoom=1.25, shift_x=0.1))
    xs = torch.arange(size, dtype=torch.float32)
    centres = [float((changed[f, ..., 0].sum(0) * xs).sum() / changed[f, ..., 0].sum()) for f in range(3)]
    assert centres[1] - centres[0] == pytest.approx(8 * 1.25, abs=0.3)
    assert centres[2] - centres[1] == pytest.approx(8 * 1.25, abs=0.3)
    # zoom about the centre (48), then 9.6 px right: the first square's centre 38 lands at 48 + 1.25 * (38 - 48) + 9.6
    assert centres[0] == pytest.approx(48 + 1.25 * (38 - 48) + 9.6, abs=0.5)


@torch.inference_mode()  # as a node runs
def test_copies_condition_on_their_own_changed_first_frame(frames, small_vae):
    copies = appearance.encode_appearance_copies(small_vae, frames, 3, 1.0, "colour and geometry", seed=7)
    changes = appearance.draw_changes(3, 1.0, "colour and geometry", seed=7)
    reference = small_vae.encode(frames)
    assert len(copies) == 3
    for (latents, condition, image), change in zip(copies, changes):
        assert image is None, "no CLIP vision given: no image embedding"
        changed = appearance.apply_change(frames, change)
        assert torch.equal(latents, small_vae.encode(changed)), "every frame of the copy has the copy's change"
        assert torch.equal(condition, small_vae.encode(changed[:1])), "the conditioning frame is the copy's frame 0"
        assert (latents - reference).abs().mean() > 1e-3, "a copy looks different from the reference"
    assert (copies[0][0] - copies[1][0]).abs().mean() > 1e-3, "each copy has its own change"
    again = appearance.encode_appearance_copies(small_vae, frames, 3, 1.0, "colour and geometry", seed=7)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(copies, again)), "the seed alone decides the copies"


def test_strength_and_kinds_scale_the_draws():
    wide = appearance.draw_changes(50, 1.0, "colour and geometry", 0)
    narrow = appearance.draw_changes(50, 0.25, "colour and geometry", 0)
    assert max(abs(c.hue) for c in narrow) <= 0.25 * appearance.MAX_HUE_TURN < max(abs(c.hue) for c in wide)
    assert max(abs(math.log(c.zoom)) for c in narrow) <= 0.25 * appearance.MAX_LOG_ZOOM + 1e-9
    colour = appearance.draw_changes(50, 1.0, "colour", 0)
    assert all(c.zoom == 1.0 and c.shift_x == 0.0 for c in colour)
    assert [c.hue for c in colour] == [c.hue for c in wide], "the same draws, whatever the kinds kept"
    assert all(c.hue == 0.0 and not c.grey for c in appearance.draw_changes(50, 1.0, "geometry", 0))
    with pytest.raises(ReenactError, match="expected augment_changes in"):
        appearance.draw_changes(1, 1.0, "texture", 0)


def loss_objective(small_svd, settings, video):
    return DenoisingObjective(small_svd, video["latents"], video["condition"], settings)


@pytest.mark.parametrize("term", ["plain", "debiased", "frame_difference"])
def test_each_loss_term_is_zero_for_the_video_itself_and_its_formula_otherwise(small_svd, video, term):
    weights = dict(plain_loss_weight=0.0, debiased_loss_weight=0.0, frame_difference_loss_weight=0.0)
    weights[f"{term}_loss_weight"] = 2.0
    objective = loss_objective(small_svd, InversionSettings(**weights), video)
    x0 = objective.x0
    delta = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4))
    sigma, anchor = 1.3, 2
    lam = edm_loss_weight(sigma, float(small_svd.model.model_sampling.sigma_data))
    conds = objective.model_conds(video["init"])
    objective.denoise = lambda *args: x0  # a perfect prediction: every term must be zero
    assert objective.loss(conds, sigma, torch.zeros_like(x0), anchor=anchor).item() == 0.0
    objective.denoise = lambda *args: x0 + delta
    expected = {"plain": delta ** 2,
                "debiased": (math.sqrt(2) * delta - delta[anchor:anchor + 1]) ** 2,  # beta = 1, anchor frame a
                "frame_difference": (delta[1:] - delta[:-1]) ** 2}[term]
    got = objective.loss(conds, sigma, torch.zeros_like(x0), anchor=anchor).item()
    assert got == pytest.approx(lam * 2.0 * expected.mean().item(), rel=1e-5)
    if term == "debiased":  # what every frame shares costs (sqrt 2 - 1)^2 of what it costs the plain loss
        objective.denoise = lambda *args: x0 + delta[:1]
        shared = objective.loss(conds, sigma, torch.zeros_like(x0), anchor=anchor).item()
        assert shared == pytest.approx(lam * 2.0 * (math.sqrt(2) - 1) ** 2 * (delta[:1] ** 2).mean().item(), rel=1e-5)


def test_the_look_swap_is_exact_arithmetic(small_vae, small_clip_vision):
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(3))
    positive, negative, latent = svd_conditioning(small_clip_vision, small_vae, image, FRAMES)
    g = torch.Generator().manual_seed(8)
    tokens, reference = torch.randn(FRAMES + 1, 2, DIM, generator=g), torch.randn(DIM, generator=g)
    embedding = MotionEmbedding(tokens, {}, reference)
    target = positive[0][0].reshape(DIM)
    as_learned = run_node("ApplyMotionEmbedding", positive=positive, negative=negative, motion_embedding=embedding,
                          latent=latent, strength=1.0, use_embedding_fps_and_bucket=True)
    swapped = run_node("ApplyMotionEmbedding", positive=positive, negative=negative, motion_embedding=embedding,
                       latent=latent, strength=1.0, use_embedding_fps_and_bucket=True, appearance=SWAP_LOOK)
    assert torch.equal(as_learned[0][0][0], tokens[:-1])
    assert torch.equal(swapped[0][0][0], tokens[:-1] + (target - reference))
    assert torch.equal(swapped[0][0][1]["time_conditioning"], tokens[-1:] + (target - reference))
    assert torch.equal(swapped[1][0][0], as_learned[1][0][0]), "the negative keeps its own token"


def test_a_file_without_the_reference_look_loads_and_the_swap_says_so(tmp_folders, small_vae, small_clip_vision):
    folder = str(tmp_folders / "embeddings")
    old = load_embedding(save_embedding(MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM), {"steps": 5}), folder, "old"))
    assert old.reference_image is None
    kept = torch.randn(DIM)
    new = load_embedding(save_embedding(MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM), {}, kept), folder, "new"))
    assert torch.equal(new.reference_image, kept)
    image = torch.rand(1, 64, 64, 3)
    positive, negative, latent = svd_conditioning(small_clip_vision, small_vae, image, FRAMES)
    with pytest.raises(ReenactError, match="keeps its reference's image embedding.*set appearance to 'as learned'"):
        run_node("ApplyMotionEmbedding", positive=positive, negative=negative, motion_embedding=old, latent=latent,
                 strength=1.0, use_embedding_fps_and_bucket=True, appearance=SWAP_LOOK)


def test_inflate_keeps_the_reference_look_and_optimize_carries_it(small_svd, small_vae, small_clip_vision, frames):
    embedding, = run_node("InflateCLIPEmbedding", clip_vision=small_clip_vision, images=frames, tokens_per_frame=2,
                          init_noise=0.1, seed=0, frames_if_single_image=FRAMES)
    with torch.inference_mode():
        first = small_clip_vision.encode_image(frames[:1]).image_embeds.float().reshape(-1)
    assert torch.allclose(embedding.reference_image, first, atol=1e-6)
    learned, _ = run_node("OptimizeMotionEmbedding", **optimize_inputs(
        model=small_svd, vae=small_vae, reference=frames, init_embedding=embedding, augment_copies=2,
        debiased_loss_weight=0.5))
    assert torch.equal(learned.reference_image, embedding.reference_image)
    assert learned.metadata["augment_copies"] == 2 and learned.metadata["debiased_loss_weight"] == 0.5


def test_augmentation_changes_what_is_learned_and_resume_stays_bit_exact(tmp_folders, small_svd, small_vae, frames):
    init = MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM, generator=torch.Generator().manual_seed(5)))
    levers = dict(augment_copies=3, augment_strength=1.0, debiased_loss_weight=0.5, frame_difference_loss_weight=0.5)

    def inputs(**more):
        return optimize_inputs(**dict(model=small_svd, vae=small_vae, reference=frames, init_embedding=init, steps=4,
                                      run_name="wave", **more))

    plain, _ = run_node("OptimizeMotionEmbedding", **inputs())
    full, _ = run_node("OptimizeMotionEmbedding", **inputs(**levers))
    assert not torch.equal(plain.tokens, full.tokens), "the levers change the run"
    with cancel_at_check(2), pytest.raises(mm.InterruptProcessingException):
        run_node("OptimizeMotionEmbedding", **inputs(save_every=2, **levers))
    checkpoint = "checkpoints/wave_00001/step_000002.safetensors"
    with pytest.raises(ReenactError, match="augment_copies \\(checkpoint 3, now 2\\)"):
        run_node("OptimizeMotionEmbedding", **inputs(resume=checkpoint, **dict(levers, augment_copies=2)))
    resumed, _ = run_node("OptimizeMotionEmbedding", **inputs(resume=checkpoint, **levers))
    assert torch.equal(resumed.tokens, full.tokens), \
        f"max difference {(resumed.tokens - full.tokens).abs().max().item():g}"


def test_a_reference_too_small_for_the_geometry_is_named_before_the_run(small_svd, small_vae, frames):
    init = MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM))
    frames = frames[:, :64, :64]
    with pytest.raises(ReenactError, match="at least 96 px on its shorter side.*got 64x64"):
        run_node("OptimizeMotionEmbedding", **optimize_inputs(model=small_svd, vae=small_vae, reference=frames,
                                                              init_embedding=init, augment_copies=2,
                                                              augment_strength=1.0))
    # colour alone needs no room
    run_node("OptimizeMotionEmbedding", **optimize_inputs(model=small_svd, vae=small_vae, reference=frames,
                                                          init_embedding=init, augment_copies=2, augment_strength=1.0,
                                                          augment_changes="colour", steps=1))


def test_a_loss_without_terms_is_refused_by_validation():
    problem = node_class("OptimizeMotionEmbedding").validate_inputs(
        steps=10, warmup_steps=0, learning_rate=0.01, sigma_log_mean=0.7, sigma_log_std=1.6, augmentation_level=0.0,
        weight_decay=0.01, gradient_checkpointing="off", lr_schedule="constant", plain_loss_weight=0.0,
        debiased_loss_weight=0.0, frame_difference_loss_weight=0.0)
    assert problem == ("expected at least one of plain_loss_weight, debiased_loss_weight and "
                       "frame_difference_loss_weight above 0, got all three 0")


def test_an_appearance_slot_is_learned_beside_the_reference_and_filled_with_the_target(
        small_svd, small_vae, small_clip_vision, frames):
    embedding, = run_node("InflateCLIPEmbedding", clip_vision=small_clip_vision, images=frames, tokens_per_frame=2,
                          init_noise=0.1, seed=0, frames_if_single_image=FRAMES)
    learned, _ = run_node("OptimizeMotionEmbedding", **optimize_inputs(
        model=small_svd, vae=small_vae, reference=frames, init_embedding=embedding, appearance_slot=True))
    plain, _ = run_node("OptimizeMotionEmbedding", **optimize_inputs(
        model=small_svd, vae=small_vae, reference=frames, init_embedding=embedding))
    assert learned.tokens.shape == embedding.tokens.shape, "the slot is not learned: the file keeps N tokens"
    assert learned.metadata["appearance_slot"] is True and not torch.equal(learned.tokens, plain.tokens)
    image = torch.rand(1, 128, 128, 3, generator=torch.Generator().manual_seed(3))
    positive, negative, latent = svd_conditioning(small_clip_vision, small_vae, image, FRAMES, size=128)
    target = positive[0][0].reshape(1, 1, DIM)
    for appearance, token in (("as learned", learned.reference_image.reshape(1, 1, DIM)), (SWAP_LOOK, target)):
        pos, neg = run_node("ApplyMotionEmbedding", positive=positive, negative=negative, motion_embedding=learned,
                            latent=latent, strength=1.0, use_embedding_fps_and_bucket=True, appearance=appearance)
        assert torch.equal(pos[0][0], torch.cat([learned.tokens[:-1], token.expand(FRAMES, 1, DIM)], 1)), appearance
        assert torch.equal(pos[0][1]["time_conditioning"], torch.cat([learned.tokens[-1:], token], 1))
        assert neg[0][0].shape == pos[0][0].shape, "cond and uncond still batch together"


def test_an_appearance_slot_needs_the_reference_look_and_says_so_before_the_run(small_svd, small_vae, frames):
    init = MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM))
    with pytest.raises(ReenactError, match="keeps its reference's image embedding for appearance_slot"):
        with cancel_at_check(1) as checks:
            run_node("OptimizeMotionEmbedding", **optimize_inputs(model=small_svd, vae=small_vae, reference=frames,
                                                                  init_embedding=init, appearance_slot=True))
    assert checks == [], "refused before the first step"


def test_the_commands_lever_flags_are_the_nodes_inputs():
    from reenact_cli.lever_flags import APPLY_LEVERS, OPTIMIZE_LEVERS
    from reenact_cli.library import __main__ as library
    from reenact_core.inversion import LEVER_SETTINGS
    assert tuple(OPTIMIZE_LEVERS) == LEVER_SETTINGS
    for node, names in (("OptimizeMotionEmbedding", OPTIMIZE_LEVERS), ("ApplyMotionEmbedding", APPLY_LEVERS)):
        assert set(names) <= {i.id for i in node_class(node).define_schema().inputs}, node
    argv = ["--library", "lib", "--augment-copies", "4", "--appearance-slot", "--appearance", SWAP_LOOK]
    assert library.settings_of(library.parse(["learn", *argv]))["levers"] == {"augment_copies": 4,
                                                                             "appearance_slot": True}
    assert library.settings_of(library.parse(["apply", *argv]))["levers"] == {"appearance": SWAP_LOOK}
    assert "levers" not in library.settings_of(library.parse(["learn", "--library", "lib"])), \
        "no lever set: a library made before the levers keeps its job ids"


def object_info(*node_ids) -> dict:
    """What a server's /object_info says of these nodes, read from the registered classes in this process."""
    import nodes as comfy_nodes
    return {node_id: {"input": comfy_nodes.NODE_CLASS_MAPPINGS[node_id].INPUT_TYPES()} for node_id in node_ids}


def test_the_library_toy_prompts_carry_the_levers_and_the_sampler_steps():
    from reenact_cli.library import __main__ as library
    from reenact_cli.library import graphs
    from reenact_cli.library.jobs import Job
    from reenact_cli.workflow_api import nodes_of_type
    argv = ["--library", "lib", "--toy", "--sampler-steps", "7", "--augment-copies", "2", "--appearance", SWAP_LOOK]
    learned, applied_settings = (library.settings_of(library.parse([command, *argv])) for command in ("learn", "apply"))
    info = object_info("OptimizeMotionEmbedding", "ApplyMotionEmbedding")
    learn = graphs.learn_prompt(Job("learn", {"reference": "ref.mp4"}, learned, "learn-1"), "ref.mp4", info)
    apply = graphs.apply_prompt(Job("apply", {"image": "img.png"}, applied_settings, "apply-1"), "img.png",
                                "m.safetensors", info)
    assert nodes_of_type(learn, "OptimizeMotionEmbedding")[0]["inputs"]["augment_copies"] == 2
    assert not nodes_of_type(learn, "KSampler") and not nodes_of_type(apply, "OptimizeMotionEmbedding")
    assert nodes_of_type(apply, "KSampler")[0]["inputs"]["steps"] == 7, "--sampler-steps is honoured with --toy"
    (applied,) = nodes_of_type(apply, "ApplyMotionEmbedding")
    assert applied["inputs"]["appearance"] == SWAP_LOOK
    (loader,) = nodes_of_type(apply, "LoadMotionEmbedding")
    assert loader["inputs"]["embedding_name"] == "m.safetensors"
    assert apply[applied["inputs"]["motion_embedding"][0]] is loader
    default = library.settings_of(library.parse(["apply", "--library", "lib", "--toy"]))
    assert default["sampler_steps"] == 12 and "levers" not in default


def test_with_clip_vision_each_copys_slot_holds_its_own_look(small_svd, small_vae, small_clip_vision, frames):
    with torch.inference_mode():
        copies = appearance.encode_appearance_copies(small_vae, frames, 2, 1.0, "colour", 3,
                                                     clip_vision=small_clip_vision)
        for (_, _, image), change in zip(copies, appearance.draw_changes(2, 1.0, "colour", 3)):
            changed = appearance.apply_change(frames, change)
            assert torch.equal(image, small_clip_vision.encode_image(changed[:1]).image_embeds.float().reshape(-1))
    embedding, = run_node("InflateCLIPEmbedding", clip_vision=small_clip_vision, images=frames, tokens_per_frame=2,
                          init_noise=0.1, seed=0, frames_if_single_image=FRAMES)
    inputs = optimize_inputs(model=small_svd, vae=small_vae, reference=frames, init_embedding=embedding,
                             appearance_slot=True, augment_copies=2, augment_changes="colour")
    shared, _ = run_node("OptimizeMotionEmbedding", **inputs)
    own, _ = run_node("OptimizeMotionEmbedding", **inputs, clip_vision=small_clip_vision)
    assert not torch.equal(shared.tokens, own.tokens), "the copies' own looks change what is learned"
