"""Motion-textual inversion: optimise only the motion tokens with SVD's own denoising loss.

One sigma per video, shared by its frames. The reference latents and the conds are computed once;
the conds hold the live token tensor, so each step only draws (sigma, noise) and runs the UNet.
Named as in Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models"
(EDM): x0 the clean latents, sigma the noise level, D(x; sigma) the denoiser, lambda(sigma) the loss
weight. The noising and the denoiser's preconditioning are the model's own (`model_sampling`,
`apply_model`); only the loss weight, which ComfyUI has no use for at inference, is written here:
`edm_loss_weight`.

Speed and memory (benchmarks/README.md): the UNet's weights are frozen, so backward computes
only activation gradients; the UNet may compute in bf16/fp16 (precision.py) while the tokens,
their AdamW state and the loss stay fp32; checkpointing granularity and a low-VRAM mode
(memory_mode.py) trade recompute for memory.
"""
import contextlib
import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import torch

import comfy.model_management
import comfy.samplers
from comfy.sampler_helpers import convert_cond

from .compiled_layers import CompileReport
from .errors import ReenactError
from .held_out import StopRule, held_out_draws, held_out_loss
from .memory_mode import free_other_models, plan_run
from .motion_conditioning import Look, conditioning_with_motion, svd_base_conditioning
from .precision import loss_scaler
from .run_changes import changed_for_run


SAME_ON_RESUME = {"resume": "same"}  # a field whose change makes a resumed run another optimisation problem


def problem_field(default):
    return field(default=default, metadata=SAME_ON_RESUME)


@dataclass(frozen=True)
class InversionSettings:
    """Every setting of one inversion, with its default: the node's schema, the CLI, the demo and the benchmarks
    read defaults from here. Fields made with problem_field define the optimisation problem, so a resumed run
    must keep the checkpoint's values (run_checkpoints.py derives its check from them)."""
    steps: int = 1000
    learning_rate: float = 1e-2
    weight_decay: float = 0.01
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    seed: int = 0
    sigma_log_mean: float = problem_field(0.7)
    sigma_log_std: float = problem_field(1.6)
    fps: int = problem_field(6)
    motion_bucket_id: int = problem_field(127)
    augmentation_level: float = problem_field(0.0)
    # Levers against a motion bound to the reference's look (benchmarks/toy/README.md, "Levers against a motion bound
    # to the reference's look"): appearance-changed copies of the reference (appearance.py; 0 copies = off) ...
    augment_copies: int = problem_field(0)
    augment_strength: float = problem_field(0.5)
    augment_changes: str = problem_field("colour and geometry")
    # ... and the loss's terms (DenoisingObjective.loss): the plain denoising loss, MotionDirector's appearance-
    # debiased one and VMC's frame differences, each with its weight (0 = left out).
    plain_loss_weight: float = problem_field(1.0)
    debiased_loss_weight: float = problem_field(0.0)
    frame_difference_loss_weight: float = problem_field(0.0)
    # An appearance slot: the reference's image embedding as one frozen token beside the N learned ones in every slot,
    # which transfer fills with the target's (motion_conditioning.Look; needs the init embedding's reference_image).
    appearance_slot: bool = problem_field(False)
    checkpointing: str = "blocks"
    precision: str = "auto"
    memory_mode: str = "balanced"
    compile: str = "off"
    # The held-out loss and the stop rule (held_out.py); defaults chosen on the toy world, benchmarks/toy/README.md.
    held_out_every: int = 25  # evaluate the held-out loss every this many steps; 0 = never
    held_out_draws: int = problem_field(4)  # its fixed (sigma, noise) draws; a resumed history needs the same
    # Off by default: on the SVD-like toy no rule tried stopped within 1.5x of the step its motion was learned at and
    # never before it (benchmarks/toy/README.md, "The stop rule, re-chosen"); the default rule stopped far too early.
    stop_when_learned: bool = False  # end the run once the held-out loss stops improving; steps is then the most
    stop_patience: int = 3  # StopRule.patience, in held-out evaluations
    stop_min_improvement: float = 0.02  # StopRule.min_improvement, relative
    preview_every: int = 0  # a live preview after every this many steps (RunHooks.on_preview); 0 = never

    def as_dict(self):
        return asdict(self)

    @classmethod
    def same_on_resume(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.metadata.get("resume") == "same")

    def stop_rule(self) -> StopRule | None:
        if not self.stop_when_learned or self.held_out_every <= 0:
            return None
        return StopRule(self.stop_patience, self.stop_min_improvement)


DEFAULTS = InversionSettings()
# The settings that act against a motion bound to the reference's look; a motion file records them.
LEVER_SETTINGS = ("augment_copies", "augment_strength", "augment_changes", "plain_loss_weight", "debiased_loss_weight",
                  "frame_difference_loss_weight", "appearance_slot")


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, settings: InversionSettings) -> float:
    """Linear warm-up, then constant or cosine decay to zero."""
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    if settings.lr_schedule == "cosine":
        span = max(1, settings.steps - settings.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * (step - settings.warmup_steps) / span))
    return 1.0


DEBIAS_BETA = 1.0  # beta of MotionDirector's appearance-debiased latents (arXiv 2310.08465, Eq. 6)


def debiased(v: torch.Tensor, anchor: int, beta: float = DEBIAS_BETA) -> torch.Tensor:
    """phi(v)_f = sqrt(beta^2 + 1) v_f - beta v_a over the frames f of v (F, C, H, W), anchor frame a: what every frame
    shares with the anchor (its look) is taken out, what differs between frames (the motion) stays."""
    return math.sqrt(beta ** 2 + 1) * v - beta * v[anchor:anchor + 1]


def frame_differences(v: torch.Tensor) -> torch.Tensor:
    """v_{f+1} - v_f: VMC's motion residuals (arXiv 2312.00845)."""
    return v[1:] - v[:-1]


def edm_loss_weight(sigma: float, sigma_data: float) -> float:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2 (Karras et al. 2022, Table 1): the
    weight that gives the denoiser's error unit variance at every noise level, as in SVD's training."""
    return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


class DenoisingObjective:
    """SVD's denoising loss on one reference video, with everything fixed precomputed.

    Sources: the reference (index 0) and its appearance-changed copies (1..K, appearance.py), each (x0, conditioning
    latent, appearance slot or None). Training draws among the copies when there are any; the held-out loss reads the
    reference.
    """

    def __init__(self, model_patcher, reference_latents, condition_latent, settings: InversionSettings,
                 appearance_copies=(), reference_image=None):
        self.patcher = model_patcher
        self.model = model_patcher.model
        self.settings = settings
        self.device = model_patcher.load_device
        self.frame_count = reference_latents.shape[0]
        if settings.appearance_slot:
            require_reference_image(reference_image)
        self.sources = [(self.model.process_latent_in(latents.to(self.device, torch.float32)),
                         condition.to(self.device, torch.float32), self._slot(image, reference_image))
                        for latents, condition, image in [(reference_latents, condition_latent, reference_image),
                                                          *appearance_copies]]
        self.x0, self.condition_latent, _ = self.sources[0]
        self.training_sources = list(range(1, len(self.sources))) or [0]
        self.transformer_options = dict(model_patcher.model_options.get("transformer_options", {}))

    def _slot(self, image, reference_image) -> Look | None:
        """A source's appearance slot: its own image embedding where it has one, else the reference's."""
        if not self.settings.appearance_slot:
            return None
        return Look((image if image is not None else reference_image).to(self.device, torch.float32), slot=True)

    def model_conds(self, tokens: torch.Tensor, source: int = 0) -> dict:
        """apply_model's conditioning keyword arguments carrying `tokens` for one source, built by the same transform
        ApplyMotionEmbedding uses (so inversion and transfer condition the UNet identically)."""
        s = self.settings
        x0, condition_latent, look = self.sources[source]
        base = svd_base_conditioning(condition_latent, tokens.shape[-1], s.fps, s.motion_bucket_id,
                                     s.augmentation_level)
        conds = convert_cond(conditioning_with_motion(base, self.frame_count, tokens, look=look))
        conds = comfy.samplers.encode_model_conds(self.model.extra_conds, conds, x0, self.device, "positive")
        return dict(conds[0]["model_conds"])

    def denoise(self, model_conds: dict, sigma: float, noise: torch.Tensor, source: int = 0) -> torch.Tensor:
        """D(x0 + sigma * noise; sigma), the model's denoised latents of one source, in fp32."""
        sampling = self.model.model_sampling
        sigmas = torch.full((self.frame_count,), sigma, device=self.device, dtype=torch.float32)
        kwargs = {k: c.process_cond(batch_size=self.frame_count, area=None, device=self.device).cond
                  for k, c in model_conds.items()}
        noised = sampling.noise_scaling(sigmas.view(-1, 1, 1, 1), noise.to(self.device), self.sources[source][0])
        return self.model.apply_model(noised, sigmas, transformer_options=dict(self.transformer_options),
                                      **kwargs).float()

    def loss(self, model_conds: dict, sigma: float, noise: torch.Tensor, source: int = 0,
             anchor: int = 0) -> torch.Tensor:
        """lambda(sigma) * (w_plain mean|e|^2 + w_debiased mean|phi(e)|^2 + w_diff mean|e_{f+1} - e_f|^2), with
        e = D(x; sigma) - x0 and phi the debiasing at the anchor frame (phi and differences are linear, so
        phi(D) - phi(x0) = phi(e)); the settings' weights, a term of weight 0 left out."""
        s = self.settings
        error = self.denoise(model_conds, sigma, noise, source) - self.sources[source][0]
        total = 0.0
        if s.plain_loss_weight:
            total = total + s.plain_loss_weight * torch.mean(error ** 2)
        if s.debiased_loss_weight:
            total = total + s.debiased_loss_weight * torch.mean(debiased(error, anchor) ** 2)
        if s.frame_difference_loss_weight:
            total = total + s.frame_difference_loss_weight * torch.mean(frame_differences(error) ** 2)
        return edm_loss_weight(sigma, float(self.model.model_sampling.sigma_data)) * total


def require_reference_image(reference_image) -> None:
    """The appearance slot holds the reference's image embedding, which Inflate CLIP Embedding keeps."""
    if reference_image is None:
        raise ReenactError("expected an init_embedding that keeps its reference's image embedding for appearance_slot "
                           "(Inflate CLIP Embedding makes one; an embedding saved by an older version has none), got "
                           "one without it; inflate it again, or turn appearance_slot off")


def draw_source_and_anchor(generator: torch.Generator, sources: list, frames: int, settings: InversionSettings):
    """Which appearance copy a step trains on and the debiased loss's anchor frame, each drawn only when it is a
    choice (so a run without these levers draws exactly what it drew before they existed)."""
    source = sources[int(torch.randint(len(sources), (), generator=generator))] if len(sources) > 1 else sources[0]
    anchor = int(torch.randint(frames, (), generator=generator)) if settings.debiased_loss_weight else 0
    return source, anchor


def draw_sigma_and_noise(generator: torch.Generator, shape, settings: InversionSettings, model_sampling):
    """One log-normal sigma for the whole video, clamped to the model's range, and CPU-drawn noise."""
    z = torch.randn((), generator=generator).item()
    sigma = math.exp(settings.sigma_log_mean + settings.sigma_log_std * z)
    sigma = min(max(sigma, float(model_sampling.sigma_min)), float(model_sampling.sigma_max))
    return sigma, torch.randn(shape, generator=generator)




@dataclass
class RunState:
    """Everything a run needs to go on exactly where it stopped (run_checkpoints.py writes it to disk).

    `optimizer` holds AdamW's per-parameter state tensors (step, exp_avg, exp_avg_sq); `rng_state` is the
    CPU generator's state after `step` draws; `scaler` is the fp16 loss scaler's state ({} when off).
    """
    step: int
    tokens: torch.Tensor
    optimizer: dict
    scaler: dict
    rng_state: torch.Tensor
    losses: list
    held_out: list = field(default_factory=list)  # [(step, held-out loss), ...]


StepCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class RunHooks:
    """Who hears what during a run; each is optional and may raise to cancel it (ComfyUI's Cancel does)."""
    on_step: StepCallback | None = None  # (step, steps, training loss) after every step
    on_held_out: StepCallback | None = None  # (step, steps, held-out loss) after every held-out evaluation
    on_preview: Callable[[int, torch.Tensor], None] | None = None  # (step, tokens) every settings.preview_every
    on_checkpoint: Callable[[RunState], None] | None = None  # the run's state every save_every steps


@dataclass
class RunStats:
    """What a run can tell about its speed: seconds per step (the first includes compiling) and what
    torch.compile did. Filled in by invert_motion when a caller passes one."""
    step_seconds: list = field(default_factory=list)
    compile: CompileReport | None = None
    preview_seconds: list = field(default_factory=list)
    held_out: list = field(default_factory=list)  # [(step, held-out loss), ...], a resumed run's earlier ones too
    held_out_seconds: list = field(default_factory=list)
    stopped_at: int | None = None  # the step a stop rule ended the run at
    stop_reason: str | None = None

    def describe_held_out(self) -> str:
        """What the held-out evaluations cost, as a share of the run's time."""
        spent, stepping = sum(self.held_out_seconds), sum(self.step_seconds)
        return (f"{len(self.held_out_seconds)} held-out evaluations took {spent:.1f} s, "
                f"{100 * spent / max(spent + stepping, 1e-9):.1f}% of the run")

    @property
    def compile_seconds(self) -> float | None:
        """The first step's time beyond a typical step's: the compile, when the run compiled."""
        if self.compile is None or len(self.step_seconds) < 2:
            return None
        return max(0.0, self.step_seconds[0] - statistics.median(self.step_seconds[1:]))

    def describe_previews(self) -> str:
        """What the previews cost, in seconds and in optimisation steps."""
        each = statistics.mean(self.preview_seconds)
        step = statistics.median(self.step_seconds) if self.step_seconds else float("nan")
        return (f"{len(self.preview_seconds)} previews took {each:.2f} s each, the time of {each / step:.1f} "
                f"optimisation steps ({step:.2f} s/step)")

    def describe(self) -> str:
        report = self.compile
        text = f"torch.compile: {report.graphs} graphs compiled, {report.graph_breaks} graph breaks"
        if report.break_reasons:
            text += f" ({'; '.join(report.break_reasons)})"
        if self.compile_seconds is not None:
            text += f"; the first step took {self.step_seconds[0]:.1f} s, {self.compile_seconds:.1f} s of it compiling"
        return text


class NonFiniteLoss(ReenactError):
    """The loss or the tokens stopped being finite; carries the last tokens whose loss was finite."""

    def __init__(self, message: str, last_good_tokens: torch.Tensor, good_steps: int, losses: list):
        super().__init__(message)
        self.last_good_tokens = last_good_tokens
        self.good_steps = good_steps
        self.losses = losses


def _snapshot(step, tokens, optimizer, scaler, generator, losses, held_out) -> RunState:
    state = optimizer.state.get(tokens, {})
    return RunState(step=step, tokens=tokens.detach().cpu().clone(),
                    optimizer={k: v.detach().cpu().clone() for k, v in state.items()},
                    scaler=dict(scaler.state_dict()), rng_state=generator.get_state(), losses=list(losses),
                    held_out=list(held_out))


def _restore(resume: RunState, tokens, optimizer, scaler, generator):
    """Put AdamW's state tensors, the loss scale and the RNG back; param groups stay from the settings."""
    if resume.optimizer:
        saved = optimizer.state_dict()
        saved["state"] = {0: {k: v.clone() for k, v in resume.optimizer.items()}}
        optimizer.load_state_dict(saved)
    if resume.scaler and scaler.is_enabled():
        scaler.load_state_dict(resume.scaler)
    generator.set_state(resume.rng_state)


def _non_finite_message(what, step, sigma, dtype, learning_rate):
    """Names the setting to change: fp16 overflows first; in bf16/fp32 the step size is the usual cause."""
    if dtype == torch.float16:
        change = f"set precision to bf16 or fp32 (fp16 overflows), or lower the learning_rate (now {learning_rate:g})"
    elif dtype == torch.bfloat16:
        change = f"lower the learning_rate (now {learning_rate:g}), or set precision to fp32"
    else:
        change = f"lower the learning_rate (now {learning_rate:g})"
    return (f"expected a finite {what}, got a non-finite one at step {step} (sigma {sigma:.3g}) with the UNet "
            f"computing in {str(dtype).removeprefix('torch.')}; {change}")


def require_matching_frames(embedding_frames: int, reference_frames: int) -> None:
    """The embedding has one token slot per reference frame (plus the temporal slot)."""
    if embedding_frames != reference_frames:
        raise ReenactError(f"expected the initial embedding's frame slots to match the reference's frames, got "
                           f"{embedding_frames} slots for {reference_frames} frames (Inflate CLIP Embedding makes "
                           f"one slot per reference frame)")


def require_steps_beyond(checkpoint_step: int, steps: int, name: str = "the checkpoint") -> None:
    """A resumed run goes on to `steps` in all, so it must be past the checkpoint's step."""
    if steps <= checkpoint_step:
        raise ReenactError(f"expected steps above the checkpoint's step {checkpoint_step} to resume {name}, "
                           f"got {steps}")


def _optimisation_step(objective: DenoisingObjective, model_conds, tokens, optimizer, scaler, generator,
                       settings: InversionSettings, plan, step: int, losses: list) -> float:
    """One AdamW step on the tokens at a freshly drawn (sigma, noise); returns the step's loss."""
    lr = settings.learning_rate * lr_factor(step, settings)
    for group in optimizer.param_groups:
        group["lr"] = lr
    source, anchor = draw_source_and_anchor(generator, objective.training_sources, objective.frame_count, settings)
    sigma, noise = draw_sigma_and_noise(generator, objective.x0.shape, settings, objective.model.model_sampling)
    on_cuda = torch.device(objective.device).type == "cuda"
    with torch.autograd.graph.save_on_cpu(pin_memory=on_cuda) if plan.offload_to_cpu else contextlib.nullcontext():
        loss = objective.loss(model_conds[source], sigma, noise, source, anchor)
    if not torch.isfinite(loss):
        raise NonFiniteLoss(_non_finite_message("loss", step + 1, sigma, plan.dtype, lr),
                            tokens.detach().cpu().clone(), step, losses)
    before = tokens.detach().clone()
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    if not torch.isfinite(tokens).all():
        raise NonFiniteLoss(_non_finite_message("embedding after the update", step + 1, sigma, plan.dtype, lr),
                            before.cpu(), step, losses)
    return loss.item()


def segment_ends(first: int, steps: int, *every: int) -> list[int]:
    """Where a run from step `first` to `steps` pauses: after every multiple of each period in `every` (0 = never)
    and at its end."""
    ends = {end for e in every if e > 0 for end in range((first // e + 1) * e, steps, e)}
    return [*sorted(ends), steps]


def invert_motion(model_patcher, reference_latents, condition_latent, init_tokens, *, settings: InversionSettings,
                  hooks: RunHooks = RunHooks(), resume: RunState | None = None, save_every: int = 0,
                  stats: RunStats | None = None, appearance_copies=(), reference_image=None):
    """Optimise motion tokens (F+1, N, D) so the frozen SVD denoises the reference video.

    Returns (tokens on CPU in fp32, per-step losses). The MODEL's outputs are unchanged afterwards,
    whether the run ends, raises or is cancelled (any hook may raise to cancel).
    `resume` continues a run from its saved state, bit for bit on a CPU; `hooks.on_checkpoint` gets the
    state every `save_every` steps (0 = never). A non-finite loss raises NonFiniteLoss with the last
    tokens whose loss was finite. `appearance_copies`, [(latents, conditioning latent, image embedding or None)] of the
    reference changed in look (appearance.encode_appearance_copies), are what the steps train on when given; the
    held-out loss reads the reference itself. `reference_image` (D,) fills the appearance slot
    (settings.appearance_slot). `stats`, when given, gets the step times, the compile report, the held-out losses and
    where a stop rule ended the run.
    Between steps, with the MODEL as the user has it (the run's layer wrappers and compute dtype are taken off and
    put back after, so ComfyUI may even unload the UNet meanwhile):
    - every `settings.held_out_every` steps, at the start and at the end (when the run is at least that long),
      the held-out loss (held_out.py) is evaluated and passed to `hooks.on_held_out(step, steps, loss)`; with
      `settings.stop_when_learned` the run ends there once the loss has stopped improving (a checkpoint is written
      then, when checkpoints are on);
    - `hooks.on_preview(step, tokens)` runs after every `settings.preview_every`-th step (0 = never).
    """
    require_matching_frames(init_tokens.shape[0] - 1, reference_latents.shape[0])
    if resume is not None:
        require_steps_beyond(resume.step, settings.steps)
    plan = plan_run(settings.memory_mode, settings.checkpointing, settings.precision, model_patcher.model,
                    model_patcher.load_device, settings.compile)
    if plan.free_other_models:
        free_other_models(model_patcher)
    comfy.model_management.load_models_gpu([model_patcher])
    objective = DenoisingObjective(model_patcher, reference_latents, condition_latent, settings, appearance_copies,
                                   reference_image)
    generator = torch.Generator().manual_seed(settings.seed)
    stop_rule = settings.stop_rule()
    # A run shorter than one period gets no held-out loss: its start and end evaluations would cost more than it.
    start_step = resume.step if resume is not None else 0
    every = settings.held_out_every if settings.steps - start_step >= settings.held_out_every else 0
    draws = held_out_draws(settings.seed, settings.held_out_draws, objective.x0.shape, settings,
                           objective.model.model_sampling) if every > 0 else []
    stats = stats if stats is not None else RunStats()
    with torch.inference_mode(False), torch.enable_grad():
        start = init_tokens if resume is None else resume.tokens
        tokens = start.detach().clone().to(objective.device, torch.float32).requires_grad_(True)
        optimizer = torch.optim.AdamW([tokens], lr=settings.learning_rate, weight_decay=settings.weight_decay)
        scaler = loss_scaler(plan.dtype, objective.device)
        first, losses = 0, []
        if resume is not None:
            _restore(resume, tokens, optimizer, scaler, generator)
            first, losses, stats.held_out = resume.step, list(resume.losses), [tuple(p) for p in resume.held_out]

        def evaluate(step: int) -> None:
            if not draws or (stats.held_out and stats.held_out[-1][0] == step):
                return
            started = time.perf_counter()
            comfy.model_management.load_models_gpu([model_patcher])
            stats.held_out.append((step, held_out_loss(objective, tokens, draws)))
            stats.held_out_seconds.append(time.perf_counter() - started)
            if hooks.on_held_out is not None:
                hooks.on_held_out(step, settings.steps, stats.held_out[-1][1])

        if plan.compile:
            logging.info("Reenact Anything: compiling the UNet's layers with torch.compile; the first step takes "
                         "longer, later runs in this process reuse the compiled graphs")
        evaluate(first)
        done, compile_reports = first, []
        preview_every = settings.preview_every if hooks.on_preview is not None else 0
        saving = save_every > 0 and hooks.on_checkpoint is not None
        for end in segment_ends(first, settings.steps, preview_every, every):
            comfy.model_management.load_models_gpu([model_patcher])  # a preview's VAE decode may have unloaded it
            with changed_for_run(objective.model, plan) as compile_report:
                compile_reports.append(compile_report)
                model_conds = {i: objective.model_conds(tokens, i) for i in objective.training_sources}
                for step in range(done, end):
                    started = time.perf_counter()
                    losses.append(_optimisation_step(objective, model_conds, tokens, optimizer, scaler, generator,
                                                     settings, plan, step, losses))
                    stats.step_seconds.append(time.perf_counter() - started)
                    if saving and (step + 1) % save_every == 0:
                        hooks.on_checkpoint(_snapshot(step + 1, tokens, optimizer, scaler, generator, losses,
                                                      stats.held_out))
                    if hooks.on_step is not None:
                        hooks.on_step(step + 1, settings.steps, losses[-1])
                done = end
            if every > 0 and (end % every == 0 or end == settings.steps):
                evaluate(end)
                reason = stop_rule.reason(stats.held_out, every) if stop_rule and end < settings.steps else None
                if reason is not None:
                    stats.stopped_at, stats.stop_reason = end, reason
                    logging.info("Reenact Anything: stopped at step %d of %d: %s", end, settings.steps, reason)
                    if saving and end % save_every != 0:
                        hooks.on_checkpoint(_snapshot(end, tokens, optimizer, scaler, generator, losses,
                                                      stats.held_out))
                    break
            if preview_every > 0 and end % preview_every == 0:
                started = time.perf_counter()
                hooks.on_preview(end, tokens.detach().cpu().clone())
                stats.preview_seconds.append(time.perf_counter() - started)
        result = tokens.detach().cpu().clone()
    stats.compile = CompileReport.merged(compile_reports) if plan.compile else None
    if stats.compile is not None:
        logging.info("Reenact Anything: %s", stats.describe())
    return result, losses
