"""Performance options of the inversion on a small SVD built from ComfyUI's own classes.

Each option may change speed and memory but not what is learned (within the precision's
tolerance), must leave the MODEL exactly as it was, and must never train a weight.
"""
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from reenact_core.errors import ReenactError
from reenact_core.inversion import InversionSettings, invert_motion
from reenact_core.layer_wrappers import CHECKPOINTING_MODES, checkpoint_targets
from reenact_core.memory_mode import MEMORY_MODES, plan_run
from reenact_core.motion_embedding import MotionEmbedding
from reenact_core.precision import PRECISIONS, loss_scaler, resolve_precision
from reenact_testkit.comfy_pack import node_class, run_node
from reenact_testkit.node_inputs import optimize_inputs

FRAMES, TOKENS, DIM = 4, 3, 64


@pytest.fixture(scope="module")
def video():
    g = torch.Generator().manual_seed(21)
    latents = torch.randn(FRAMES, 4, 8, 8, generator=g)
    return dict(latents=latents, condition=latents[:1].clone(),
                init=torch.randn(FRAMES + 1, TOKENS, DIM, generator=g) * 0.5)


def invert(model, video, **settings):
    settings.setdefault("seed", 2)
    with torch.inference_mode():
        return invert_motion(model, video["latents"], video["condition"], video["init"],
                             settings=InversionSettings(**settings))


def model_state(model):
    """Everything an inversion might leave behind on the MODEL."""
    dm = model.model.diffusion_model
    return dict(
        manual_cast=model.model.manual_cast_dtype,
        cast_flags=[m.__dict__.get("comfy_cast_weights") for m in dm.modules()],
        forwards=[m for m in dm.modules() if "forward" in m.__dict__],
        requires_grad=[p.requires_grad for p in model.model.parameters()],
        dtypes=[p.dtype for p in model.model.parameters()],
    )


def fixed_denoising_loss(model, video):
    """The denoising loss (a scalar) of one fixed apply_model call, the way the sampler calls the UNet: the video's
    init tokens, sigma 1.5, seed-0 noise."""
    from reenact_core.inversion import DenoisingObjective
    objective = DenoisingObjective(model, video["latents"], video["condition"], InversionSettings())
    with torch.inference_mode():
        conds = objective.model_conds(video["init"])
        return objective.loss(conds, 1.5, torch.randn(objective.x0.shape, generator=torch.Generator().manual_seed(0)))


class Recorder:
    """Real hooks (torch's public API) on the real UNet and on every optimizer step of the run."""

    def __init__(self, module):
        self.input_dtypes, self.optimizers, self.calls = [], [], 0
        self.handles = [module.register_forward_pre_hook(self._pre),
                        register_optimizer_step_post_hook(self._step)]

    def _pre(self, module, args):
        self.calls += 1
        self.input_dtypes.append(args[0].dtype)

    def _step(self, optimizer, args, kwargs):
        self.optimizers.append(optimizer)

    def close(self):
        for h in self.handles:
            h.remove()


def first_attention(model):
    """The first spatial self-attention: inside every checkpointing unit, so a recompute calls it again."""
    from comfy.ldm.modules.attention import BasicTransformerBlock
    block = next(m for m in model.model.diffusion_model.modules() if isinstance(m, BasicTransformerBlock))
    return block.attn1


@pytest.mark.parametrize("precision,dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_16bit_compute_keeps_tokens_and_adamw_state_fp32(small_svd, video, precision, dtype):
    """The UNet's layers see 16-bit inputs; the tokens, their gradient and AdamW's moments stay fp32."""
    reference, _ = invert(small_svd, video, steps=6, precision="fp32", checkpointing="off")
    rec = Recorder(first_attention(small_svd))
    try:
        tokens, losses = invert(small_svd, video, steps=6, precision=precision, checkpointing="off")
    finally:
        rec.close()
    assert set(rec.input_dtypes) == {dtype}, "the UNet must compute in the low dtype"
    assert tokens.dtype == torch.float32
    (param,) = rec.optimizers[-1].param_groups[0]["params"]
    assert param.dtype == torch.float32 and param.grad.dtype == torch.float32
    state = rec.optimizers[-1].state[param]
    assert state["exp_avg"].dtype == torch.float32 and state["exp_avg_sq"].dtype == torch.float32
    assert all(torch.isfinite(torch.tensor(losses)))
    # measured: relative deviation 0.07 (bf16) and 0.013 (fp16) of the distance travelled in fp32
    moved = (reference - video["init"]).norm()
    assert (tokens - reference).norm() / moved < 0.25
    assert not torch.equal(tokens, reference), "16-bit compute cannot give bit-identical fp32 tokens"


def test_auto_precision_is_what_comfyui_loaded(small_svd, video):
    """The test model is loaded in fp32 on the CPU, as ComfyUI does; auto changes nothing."""
    assert resolve_precision("auto", small_svd.model) == torch.float32
    rec = Recorder(first_attention(small_svd))
    try:
        auto, _ = invert(small_svd, video, steps=3, precision="auto")
    finally:
        rec.close()
    assert set(rec.input_dtypes) == {torch.float32}
    fp32, _ = invert(small_svd, video, steps=3, precision="fp32")
    assert torch.equal(auto, fp32)


def test_loss_scaling_only_for_fp16():
    assert loss_scaler(torch.float16, "cpu").is_enabled()
    assert not loss_scaler(torch.bfloat16, "cpu").is_enabled()
    assert not loss_scaler(torch.float32, "cpu").is_enabled()


def test_fp16_overflow_names_the_setting_to_change(small_svd, video):
    """Latents beyond fp16's range overflow in the forward; the error says to use bf16 or fp32."""
    huge = dict(video, latents=video["latents"] * 1e6, condition=video["condition"] * 1e6)
    with pytest.raises(ReenactError, match="precision to bf16 or fp32"):
        invert(small_svd, huge, steps=1, precision="fp16", sigma_log_std=0.0, sigma_log_mean=0.0)
    _, losses = invert(small_svd, huge, steps=1, precision="fp32", sigma_log_std=0.0, sigma_log_mean=0.0)
    assert torch.isfinite(torch.tensor(losses)).all(), "fp32 holds the same numbers"


@pytest.mark.parametrize("mode", ["blocks", "layers"])
def test_checkpointing_modes_recompute_and_learn_the_same(small_svd, video, mode):
    """Each mode re-runs wrapped layers in backward (twice the calls) and gives off's tokens.

    The call count is what proves a mode is not a silent no-op: equal tokens alone would pass.
    """
    block = first_attention(small_svd)
    calls = {}
    results = {}
    for m in ("off", mode):
        rec = Recorder(block)
        try:
            results[m], _ = invert(small_svd, video, steps=4, checkpointing=m)
        finally:
            rec.close()
        calls[m] = rec.calls
    assert calls["off"] == 4 and calls[mode] == 8, calls
    assert torch.allclose(results["off"], results[mode], atol=1e-5)


def test_layers_is_finer_than_blocks_and_never_nests(small_svd):
    dm = small_svd.model.diffusion_model
    blocks, layers = checkpoint_targets(dm, "blocks"), checkpoint_targets(dm, "layers")
    assert len(layers) > len(blocks)
    ids = {id(m) for m in layers}
    for m in layers:
        assert not any(id(sub) in ids for sub in m.modules() if sub is not m), type(m).__name__
    with pytest.raises(ValueError):
        checkpoint_targets(dm, "every")


@pytest.mark.parametrize("settings", [dict(precision="bf16", checkpointing="layers"),
                                      dict(precision="fp16", checkpointing="blocks"),
                                      dict(memory_mode="low_vram")])
def test_no_weight_gets_a_gradient_and_the_model_is_untouched(small_svd, video, settings):
    """Weights are frozen even if the MODEL arrives with requires_grad set; all switches come back."""
    params = list(small_svd.model.parameters())
    flags = [p.requires_grad for p in params]
    before_loss = fixed_denoising_loss(small_svd, video)
    try:
        with torch.inference_mode():  # ComfyUI's weights are inference tensors: flags can only change in here
            for p in params:
                p.requires_grad_(True)
        before = model_state(small_svd)
        tokens, _ = invert(small_svd, video, steps=2, **settings)
        assert all(p.grad is None for p in small_svd.model.parameters())
        assert model_state(small_svd) == before
    finally:
        with torch.inference_mode():
            for p, flag in zip(small_svd.model.parameters(), flags):
                p.requires_grad_(flag)
    assert torch.equal(fixed_denoising_loss(small_svd, video), before_loss)
    assert not torch.equal(tokens, video["init"])


def test_memory_modes_plan(small_svd):
    device = small_svd.load_device
    balanced = plan_run("balanced", "blocks", "fp32", small_svd.model, device)
    assert (balanced.checkpointing, balanced.dtype, balanced.free_other_models) == ("blocks", torch.float32, False)
    low = plan_run("low_vram", "off", "auto", small_svd.model, device)
    assert low.checkpointing == "layers" and low.dtype == torch.bfloat16 and low.free_other_models
    assert plan_run("low_vram", "off", "fp16", small_svd.model, device).dtype == torch.float16
    with pytest.raises(ReenactError):
        plan_run("tiny", "off", "auto", small_svd.model, device)
    with pytest.raises(ReenactError):
        plan_run("balanced", "off", "fp8", small_svd.model, device)


def test_node_offers_the_options_with_safe_defaults():
    schema = node_class("OptimizeMotionEmbedding").define_schema()
    inputs = {i.id: i for i in schema.inputs}
    assert inputs["precision"].options == list(PRECISIONS) and inputs["precision"].default == "auto"
    assert inputs["memory_mode"].options == list(MEMORY_MODES) and inputs["memory_mode"].default == "balanced"
    assert inputs["gradient_checkpointing"].options == list(CHECKPOINTING_MODES)
    assert inputs["gradient_checkpointing"].default == "blocks"


@pytest.mark.parametrize("bad", [dict(precision="fp8"), dict(memory_mode="tiny"),
                                 dict(gradient_checkpointing="every")])
def test_core_names_unknown_options_past_validation(small_svd, small_vae, bad):
    """A caller that skips ComfyUI's validation (test_prompt_validation covers that path) still gets the
    value named by the core, not a failure deep inside."""
    inputs = optimize_inputs(model=small_svd, vae=small_vae, reference=torch.rand(FRAMES, 64, 64, 3),
                             init_embedding=MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM)), steps=1,
                             gradient_checkpointing="blocks")
    inputs.update(bad)
    with pytest.raises(ValueError, match=repr(next(iter(bad.values())))):  # the pack's ReenactError
        run_node("OptimizeMotionEmbedding", **inputs)


def test_node_low_vram_run_leaves_the_model_as_it_was(small_svd, small_vae):
    frames = torch.rand(FRAMES, 64, 64, 3, generator=torch.Generator().manual_seed(4))
    init = MotionEmbedding(torch.randn(FRAMES + 1, 2, DIM, generator=torch.Generator().manual_seed(5)))
    before = model_state(small_svd)
    embedding, _ = run_node("OptimizeMotionEmbedding", **optimize_inputs(
        model=small_svd, vae=small_vae, reference=frames, init_embedding=init, memory_mode="low_vram"))
    assert embedding.tokens.dtype == torch.float32 and not torch.equal(embedding.tokens, init.tokens)
    assert model_state(small_svd) == before
