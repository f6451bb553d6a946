"""Per-frame routing observed inside the real model, and transfer with ComfyUI's KSampler."""
import pytest
import torch

from reenact_core.errors import ReenactError
from reenact_core.motion_conditioning import resample_frames
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.comfy_graph import apply_motion, sample, svd_conditioning

FRAMES, TOKENS, DIM = 6, 3, 64


@pytest.fixture(scope="module")
def svd_inputs(small_vae, small_clip_vision):
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(3))
    return svd_conditioning(small_clip_vision, small_vae, image, FRAMES)


def capture_attn2_contexts(model, positive, negative, latent):
    """Run one KSampler step with cfg > 1 and record every attn2 (cross-attention) context."""
    seen = []

    def patch(n, context, value, extra_options):
        seen.append(context.detach().clone())
        return n, context, value

    patched = model.clone()
    patched.set_model_attn2_patch(patch)
    sample(patched, positive, negative, latent, steps=1, cfg=3.0)
    return seen


def split_spatial_temporal(contexts, frames):
    """Spatial blocks see one row per frame (2F with cond+uncond batched); temporal blocks h*w rows."""
    spatial = [c for c in contexts if c.shape[0] == 2 * frames]
    temporal = [c for c in contexts if c.shape[0] != 2 * frames]
    return spatial, temporal


def test_per_frame_routing(small_svd, svd_inputs):
    positive, negative, latent = svd_inputs
    tokens = torch.randn(FRAMES + 1, TOKENS, DIM, generator=torch.Generator().manual_seed(0))
    changed_frame, changed_temporal = tokens.clone(), tokens.clone()
    k = 2
    changed_frame[k] += 1.0
    changed_temporal[-1] += 1.0
    runs = []
    for t in (tokens, changed_frame, changed_temporal):
        pos, neg = apply_motion(positive, negative, MotionEmbedding(t), latent)
        runs.append(split_spatial_temporal(capture_attn2_contexts(small_svd, pos, neg, latent), FRAMES))
    (base_s, base_t), (frame_s, frame_t), (temp_s, temp_t) = runs
    assert base_s and base_t, "both spatial and temporal cross-attention must be seen"
    # cond and uncond batched into 2F rows: the negative has the same shape as the positive
    assert all(c.shape[1] == TOKENS for c in base_s)
    # ComfyUI may put the uncond half first; SVD's negative is all zeros, which tells the halves apart
    offset = 0 if torch.allclose(base_s[0][:FRAMES], tokens[:FRAMES]) else FRAMES
    assert torch.allclose(base_s[0][offset:offset + FRAMES], tokens[:FRAMES])
    assert torch.count_nonzero(base_s[0][FRAMES - offset:2 * FRAMES - offset]) == 0
    for b, f in zip(base_s, frame_s):
        differs = [(b[i] != f[i]).any().item() for i in range(2 * FRAMES)]
        assert differs == [i == offset + k for i in range(2 * FRAMES)], "only frame k's spatial context may change"
    for b, f in zip(base_t, frame_t):
        assert torch.equal(b, f), "frame tokens must not reach the temporal blocks"
    for b, t in zip(base_s, temp_s):
        assert torch.equal(b, t), "the temporal slot must not reach the spatial blocks"
    assert all(not torch.equal(b, t) for b, t in zip(base_t, temp_t)), "the temporal slot reaches temporal blocks"
    for c in base_t:  # every temporal block sees the temporal slot on the cond video's rows
        assert torch.isclose(c, tokens[-1]).all(-1).all(-1).any()


@pytest.mark.parametrize("latent_frames", [FRAMES, 10])
def test_transfer_runs_with_cfg(small_svd, small_vae, small_clip_vision, latent_frames):
    """KSampler on ApplyMotionEmbedding's conds with CFG > 1, at the embedding's frame count and another."""
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(4))
    positive, negative, latent = svd_conditioning(small_clip_vision, small_vae, image, latent_frames)
    tokens = torch.randn(FRAMES + 1, TOKENS, DIM, generator=torch.Generator().manual_seed(1))
    pos, neg = apply_motion(positive, negative, MotionEmbedding(tokens), latent)
    assert pos[0][0].shape == (latent_frames, TOKENS, DIM) and neg[0][0].shape == pos[0][0].shape
    assert torch.allclose(pos[0][0], resample_frames(tokens[:-1], latent_frames))
    out = sample(small_svd, pos, neg, latent, steps=2, cfg=2.5)
    assert out.shape == latent["samples"].shape and torch.isfinite(out).all()
    plain = sample(small_svd, positive, negative, latent, steps=2, cfg=2.5)
    assert not torch.allclose(out, plain), "the motion tokens must change the result"


def test_resampling_stretches_instead_of_tiling():
    spatial = torch.arange(14.0).view(14, 1, 1)
    out = resample_frames(spatial, 25)
    assert out[0].item() == 0 and out[-1].item() == 13
    assert torch.all(out[1:, 0, 0] >= out[:-1, 0, 0]), "a longer video replays nothing: the motion is stretched"


def test_strength_zero_is_plain_svd(small_svd, svd_inputs):
    """strength 0 gives the image's own token N times, which attends exactly like SVD's single token."""
    positive, negative, latent = svd_inputs
    tokens = torch.randn(FRAMES + 1, TOKENS, DIM)
    pos, neg = apply_motion(positive, negative, MotionEmbedding(tokens), latent, strength=0.0)
    assert torch.allclose(pos[0][0], positive[0][0].expand(FRAMES, TOKENS, DIM))
    a = sample(small_svd, pos, neg, latent, steps=2, cfg=2.5)
    b = sample(small_svd, positive, negative, latent, steps=2, cfg=2.5)
    assert (a - b).abs().max() <= 1e-4 * b.abs().max(), (a - b).abs().max()


def test_apply_does_not_change_its_inputs(svd_inputs):
    positive, negative, latent = svd_inputs
    keys = set(positive[0][1])
    pooled = positive[0][0].clone()
    apply_motion(positive, negative, MotionEmbedding(torch.randn(FRAMES + 1, TOKENS, DIM)), latent)
    assert set(positive[0][1]) == keys and torch.equal(positive[0][0], pooled)


def test_dim_mismatch_is_named(svd_inputs):
    positive, negative, latent = svd_inputs
    with pytest.raises(ReenactError, match="expected a motion embedding of dim 64.*got dim 1024"):
        apply_motion(positive, negative, MotionEmbedding(torch.randn(FRAMES + 1, TOKENS, 1024)), latent)
