import logging

import folder_paths

import comfy.model_management
import comfy.utils
from comfy_api.latest import io

from ..reenact_core.appearance import AUGMENT_CHANGES, appearance_copies_for, geometry_problem, widest_changes
from ..reenact_core.layer_wrappers import CHECKPOINTING_MODES, COMPILE_MODES
from ..reenact_core.errors import ReenactError
from ..reenact_core.inversion import (DEFAULTS, LEVER_SETTINGS, LR_SCHEDULES, InversionSettings, RunHooks,
                                      RunStats, require_matching_frames, require_reference_image)
from ..reenact_core.inversion_job import (FILE_DEFAULTS, NO_RESUME, RunFiles, invert_motion_with_files, load_resume,
                                          run_name_problem)
from ..reenact_core.loss_plot import loss_curve_image
from ..reenact_core.memory_mode import MEMORY_MODES, compile_problem
from ..reenact_core.motion_preview import PREVIEW_STEPS
from ..reenact_core.non_dynamic import non_dynamic
from ..reenact_core.model_checks import (model_fingerprint, require_embedding_fits, require_latents_fit,
                                         require_svd, require_vae_for)
from ..reenact_core.precision import PRECISIONS
from ..reenact_core.run_checkpoints import list_checkpoints, tensor_fingerprint
from ..reenact_core.svd_latents import encode_reference
from .common import BENCHMARKS, CATEGORY, EMBEDDINGS_FOLDER, TOY_BENCHMARKS, MotionEmbeddingType, size_problem
from .live_events import LossEvents
from .live_preview import preview_callback, preview_target
from .schema_features import advanced, search_aliases
from .validation import at_most_problem, declared_problem, first_problem


# Inputs named otherwise than their InversionSettings field (renaming an input would break saved workflows).
SETTING_INPUTS = {"gradient_checkpointing": "checkpointing"}
FILE_INPUTS = ("run_name", "save_every", "keep_checkpoints", "resume")  # RunFiles' fields


def embeddings_folder() -> str:
    return folder_paths.get_folder_paths(EMBEDDINGS_FOLDER)[0]


def run_settings(inputs: dict) -> InversionSettings:
    """The node's values as one InversionSettings; an input an older workflow lacks keeps the settings' default."""
    return InversionSettings(**{SETTING_INPUTS.get(name, name): value for name, value in inputs.items()
                                if value is not None and name not in FILE_INPUTS})


def run_files(inputs: dict) -> RunFiles:
    """Where the run's checkpoints go, how many it keeps, and the one it resumes."""
    return RunFiles(embeddings_folder(), **{name: inputs[name] for name in FILE_INPUTS
                                            if inputs.get(name) not in (None, "")})


def stop_problem(stop_when_learned, held_out_every) -> str | None:
    """Stopping reads the held-out loss, so it needs one."""
    if stop_when_learned and held_out_every is not None and held_out_every <= 0:
        return (f"expected held_out_every above 0 when stop_when_learned is on (stopping reads the held-out loss), "
                f"got {held_out_every}")
    return None


def run_outcome(stats: RunStats) -> dict:
    """What the embedding's metadata keeps of the held-out loss and of a stop."""
    outcome = {}
    if stats.held_out:
        outcome.update(held_out=[[step, loss] for step, loss in stats.held_out], held_out_loss=stats.held_out[-1][1])
    if stats.stopped_at is not None:
        outcome.update(stopped_at=stats.stopped_at, stop_reason=stats.stop_reason)
    return outcome


def loss_terms_problem(*weights) -> str | None:
    """The loss needs at least one term."""
    if all(w is not None and w == 0 for w in weights):
        return ("expected at least one of plain_loss_weight, debiased_loss_weight and frame_difference_loss_weight "
                "above 0, got all three 0")
    return None


def resume_options() -> list[str]:
    return [NO_RESUME, *list_checkpoints(embeddings_folder())]


class OptimizeMotionEmbedding(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="OptimizeMotionEmbedding",
            display_name="Optimize Motion Embedding",
            category=CATEGORY,
            description="Learns the reference video's motion as embedding tokens for the frozen SVD model "
                        "(motion-textual inversion). Only the embedding changes; the MODEL is left as it was.",
            **search_aliases("motion inversion", "motion textual inversion", "learn motion", "train motion",
                             "motion lora", "reenact", "reenact anything"),
            inputs=[
                io.Model.Input("model", tooltip="SVD image-to-video MODEL (Image Only Checkpoint Loader)."),
                io.Vae.Input("vae", tooltip="The VAE from the same checkpoint."),
                io.Image.Input("reference", tooltip="Reference frames from Load Motion Reference."),
                MotionEmbeddingType.Input("init_embedding", tooltip="From Inflate CLIP Embedding, or an "
                                          "embedding to keep training."),
                io.Int.Input("steps", default=DEFAULTS.steps, min=1, max=100_000,
                             tooltip="Optimisation steps; with stop_when_learned the most it may take. Motion "
                                     "shows by 500-1000 steps on SVD (the paper)."),
                io.Float.Input("learning_rate", default=DEFAULTS.learning_rate, min=1e-6, max=1.0, step=0.001),
                io.Int.Input("seed", default=DEFAULTS.seed, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                io.Float.Input("sigma_log_mean", default=DEFAULTS.sigma_log_mean, min=-5.0, max=6.0, step=0.1,
                               tooltip="Noise levels are drawn as sigma = exp(mean + std * z), one per video. "
                                       "Higher means more weight on coarse motion.", **advanced(io.Float)),
                io.Float.Input("sigma_log_std", default=DEFAULTS.sigma_log_std, min=0.0, max=5.0, step=0.1,
                               **advanced(io.Float)),
                io.Float.Input("augmentation_level", default=DEFAULTS.augmentation_level, min=0.0, max=10.0,
                               step=0.01,
                               tooltip="Noise added to the conditioning frame; use the same value in "
                                       "SVD_img2vid_Conditioning at transfer.", **advanced(io.Float)),
                io.Int.Input("augment_copies", default=DEFAULTS.augment_copies, min=0, max=64, optional=True,
                             tooltip="Appearance augmentation: train on this many copies of the reference, each "
                                     "with one random change of colour and/or zoom and shift applied to every "
                                     "frame, so the motion does not stay bound to the reference's look. Encoded "
                                     "once before the first step (a step costs the same). 0 = off. When it helps: "
                                     "the README, \"Motion that stays with the reference's look\".",
                             **advanced(io.Int)),
                io.Float.Input("augment_strength", default=DEFAULTS.augment_strength, min=0.0, max=1.0, step=0.05,
                               optional=True,
                               tooltip=f"How far the copies' look may differ: at 1, {widest_changes()}.",
                               **advanced(io.Float)),
                io.Combo.Input("augment_changes", options=list(AUGMENT_CHANGES), default=DEFAULTS.augment_changes,
                               optional=True, tooltip="Which changes the copies get.", **advanced(io.Combo)),
                io.Float.Input("plain_loss_weight", default=DEFAULTS.plain_loss_weight, min=0.0, max=10.0,
                               step=0.05, optional=True,
                               tooltip="Weight of SVD's own denoising loss (0 leaves it out).", **advanced(io.Float)),
                io.Float.Input("debiased_loss_weight", default=DEFAULTS.debiased_loss_weight, min=0.0, max=10.0,
                               step=0.05, optional=True,
                               tooltip="Weight of MotionDirector's appearance-debiased loss: each frame's error "
                                       "minus that of a random anchor frame, so what all frames share (the look) "
                                       "counts less than what changes (the motion). 0 = off.", **advanced(io.Float)),
                io.Float.Input("frame_difference_loss_weight", default=DEFAULTS.frame_difference_loss_weight,
                               min=0.0, max=10.0, step=0.05, optional=True,
                               tooltip="Weight of VMC's loss on the differences of consecutive frames. 0 = off.",
                               **advanced(io.Float)),
                io.Boolean.Input("appearance_slot", default=DEFAULTS.appearance_slot, optional=True,
                                 tooltip="Learn beside one frozen token holding the reference's image embedding in "
                                         "every slot, so that the look has a channel of its own; Apply Motion "
                                         "Embedding puts the target's there with appearance 'swap to the "
                                         "target's'. Needs an init_embedding from Inflate CLIP Embedding.",
                                 **advanced(io.Boolean)),
                io.Int.Input("fps", default=DEFAULTS.fps, min=1, max=1024, tooltip="SVD's fps conditioning."),
                io.Int.Input("motion_bucket_id", default=DEFAULTS.motion_bucket_id, min=1, max=1023),
                io.Combo.Input("gradient_checkpointing", options=list(CHECKPOINTING_MODES),
                               default=DEFAULTS.checkpointing,
                               tooltip="blocks: recompute each UNet block in backward, much less VRAM, "
                                       f"slower (measured: {BENCHMARKS}). layers: recompute each "
                                       "resblock and transformer block on its own, finer. off: fastest, most "
                                       "VRAM. budget (needs "
                                       "compile on): the compiler keeps what fits a fixed share of off's "
                                       "memory and recomputes only the cheap ops.", **advanced(io.Combo)),
                io.Combo.Input("lr_schedule", options=list(LR_SCHEDULES), default=DEFAULTS.lr_schedule,
                               **advanced(io.Combo)),
                io.Int.Input("warmup_steps", default=DEFAULTS.warmup_steps, min=0, max=100_000, **advanced(io.Int)),
                io.Float.Input("weight_decay", default=DEFAULTS.weight_decay, min=0.0, max=1.0, step=0.001,
                               **advanced(io.Float)),
                io.Combo.Input("precision", options=list(PRECISIONS), default=DEFAULTS.precision, optional=True,
                               tooltip="The UNet's compute dtype during inversion; the embedding and its "
                                       "optimizer state stay fp32. auto: the dtype ComfyUI loaded the model "
                                       "in (fp16 on most GPUs, with loss scaling). bf16 is the safer 16-bit "
                                       "choice where the GPU supports it.", **advanced(io.Combo)),
                io.Combo.Input("memory_mode", options=list(MEMORY_MODES), default=DEFAULTS.memory_mode, optional=True,
                               tooltip="low_vram (8-16 GB cards): layer checkpointing, each layer's input and "
                                       "the other saved tensors kept in CPU memory, 16-bit compute and every "
                                       "other model unloaded first; slower. Overrides gradient_checkpointing "
                                       "and fp32/auto-fp32 precision.", **advanced(io.Combo)),
                io.Combo.Input("compile", options=list(COMPILE_MODES), default=DEFAULTS.compile, optional=True,
                               tooltip="on: torch.compile each UNet layer (fuses the norm and elementwise work). "
                                       "The first run compiles for a minute or more (the console log says how "
                                       "long); later runs in the same ComfyUI session reuse it. Needs a working "
                                       "compiler toolchain (Triton on NVIDIA).", **advanced(io.Combo)),
                io.ClipVision.Input("clip_vision", optional=True,
                                    tooltip="Only with appearance_slot and augment_copies: each changed copy's slot "
                                            "then holds that copy's own image embedding, so the look has its own "
                                            "channel in every copy (without it, every copy's slot holds the "
                                            "reference's)."),
                io.String.Input("source_name", default="", optional=True, force_input=True,
                                tooltip="Recorded in the embedding's metadata (Load Motion Reference's name)."),
                io.String.Input("run_name", default=FILE_DEFAULTS.run_name, optional=True,
                                tooltip="Checkpoints go to models/motion_embeddings/checkpoints/<run_name>_NNNNN/; "
                                        "a rescued embedding after an overflow to rescued/<run_name>_NNNNN."),
                io.Int.Input("save_every", default=FILE_DEFAULTS.save_every, min=0, max=100_000, optional=True,
                             tooltip="Save a run checkpoint (embedding, AdamW state, step, RNG state) every "
                                     "this many steps; 0 = off."),
                io.Int.Input("keep_checkpoints", default=FILE_DEFAULTS.keep_checkpoints, min=0, max=1000, optional=True,
                             tooltip="How many of this run's newest checkpoints to keep; 0 = keep all.",
                             **advanced(io.Int)),
                io.Combo.Input("resume", options=resume_options(), default=FILE_DEFAULTS.resume, optional=True,
                               tooltip="Go on from a run checkpoint: same model, reference and noise settings "
                                       "(checked). Its seed is used; steps is the total to reach."),
                io.Int.Input("preview_every", default=DEFAULTS.preview_every, min=0, max=100_000, optional=True,
                             tooltip="Every this many steps, sample a short preview of the motion learned so far "
                                     f"({PREVIEW_STEPS} sampler steps without CFG, then a VAE decode) and show it on "
                                     "the node. 0 = off. What previews cost, in optimisation steps: the console "
                                     f"log after the run, and {BENCHMARKS}."),
                io.Image.Input("preview_image", optional=True,
                               tooltip="The image the previews animate (its first frame, cropped to the "
                                       "reference's size). Default: the reference's first frame."),
                io.Int.Input("held_out_every", default=DEFAULTS.held_out_every, min=0, max=100_000, optional=True,
                             tooltip="Every this many steps (and at the start and the end), evaluate the loss at "
                                     f"{DEFAULTS.held_out_draws} fixed noise levels and noises: unlike the training "
                                     "loss it moves only when the motion does. Drawn on the loss curve; 0 = off. "
                                     f"Its cost: {TOY_BENCHMARKS}.", **advanced(io.Int)),
                io.Boolean.Input("stop_when_learned", default=DEFAULTS.stop_when_learned, optional=True,
                                 tooltip="End the run once the held-out loss has improved by less than "
                                         "stop_min_improvement over the last stop_patience evaluations; steps is "
                                         "then the most it may take. Off by default: on the SVD-like toy the "
                                         "held-out loss flattened long before the motion was learned. The "
                                         f"evidence: {TOY_BENCHMARKS}."),
                io.Int.Input("stop_patience", default=DEFAULTS.stop_patience, min=1, max=1000, optional=True,
                             tooltip="Held-out evaluations without enough improvement before the run stops.",
                             **advanced(io.Int)),
                io.Float.Input("stop_min_improvement", default=DEFAULTS.stop_min_improvement, min=0.0, max=0.5,
                               step=0.001, optional=True,
                               tooltip="The relative improvement of the best held-out loss that counts as progress.",
                               **advanced(io.Float)),
            ],
            outputs=[MotionEmbeddingType.Output("motion_embedding"), io.Image.Output("loss_curve")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, steps, warmup_steps, learning_rate, sigma_log_mean, sigma_log_std,
                        augmentation_level, weight_decay, gradient_checkpointing, lr_schedule, precision=None,
                        memory_mode=None, compile=None, resume=None, run_name=None, held_out_every=None,
                        stop_when_learned=None, stop_patience=None, stop_min_improvement=None,
                        augment_strength=None, augment_changes=None, plain_loss_weight=None,
                        debiased_loss_weight=None, frame_difference_loss_weight=None):
        """NaN, combo options, a warm-up longer than the run, an unsafe run name and a loss of no terms
        (validation.py says why these are the node's); ComfyUI checks every other input."""
        return first_problem(
            declared_problem(cls, steps=steps, warmup_steps=warmup_steps, learning_rate=learning_rate,
                             sigma_log_mean=sigma_log_mean, sigma_log_std=sigma_log_std,
                             augmentation_level=augmentation_level, weight_decay=weight_decay,
                             gradient_checkpointing=gradient_checkpointing, lr_schedule=lr_schedule,
                             precision=precision, memory_mode=memory_mode, compile=compile, resume=resume,
                             held_out_every=held_out_every, stop_patience=stop_patience,
                             stop_min_improvement=stop_min_improvement, augment_strength=augment_strength,
                             augment_changes=augment_changes, plain_loss_weight=plain_loss_weight,
                             debiased_loss_weight=debiased_loss_weight,
                             frame_difference_loss_weight=frame_difference_loss_weight),
            loss_terms_problem(plain_loss_weight, debiased_loss_weight, frame_difference_loss_weight),
            at_most_problem("warmup_steps", warmup_steps, "steps", steps),
            compile_problem(gradient_checkpointing, compile or "off") if memory_mode != "low_vram" else None,
            run_name_problem(run_name) if run_name is not None else None,
            stop_problem(stop_when_learned, held_out_every))

    @classmethod
    def execute(cls, model, vae, reference, init_embedding, source_name="", preview_image=None, clip_vision=None,
                **inputs) -> io.NodeOutput:
        """`inputs`: the widget values, read as InversionSettings (run_settings) and RunFiles (run_files)."""
        settings = run_settings(inputs)
        if problem := (size_problem(reference.shape[2], reference.shape[1])
                       or geometry_problem(reference.shape[2], reference.shape[1], settings.augment_strength,
                                           settings.augment_changes, settings.augment_copies)):
            raise ReenactError(problem)
        require_svd(model)
        require_vae_for(model, vae)
        require_embedding_fits(model, init_embedding)
        require_matching_frames(init_embedding.frames, reference.shape[0])
        if settings.appearance_slot:
            require_reference_image(init_embedding.reference_image)
        model = non_dynamic(model)  # after the cheap checks: the first delegate of a MODEL is loaded from disk
        files = run_files(inputs)
        steps = settings.steps
        fingerprint, reference_fingerprint = model_fingerprint(model), tensor_fingerprint(reference)
        resumed, settings = load_resume(files, settings, fingerprint, reference_fingerprint,
                                        init_embedding.tokens.shape)
        latents, condition_latent = encode_reference(vae, reference, settings.augmentation_level, settings.seed)
        require_latents_fit(model, latents, reference.shape[2], reference.shape[1])
        copies = appearance_copies_for(vae, reference, settings, clip_vision)
        node_id = cls.hidden.unique_id if cls.hidden else None
        on_preview = None
        if settings.preview_every > 0:
            target = preview_target(vae, reference, preview_image, condition_latent, settings)
            on_preview = preview_callback(model, vae, target, node_id, files.run_name, steps)
        progress = comfy.utils.ProgressBar(steps)
        loss_events = LossEvents(node_id, steps)

        def on_step(step, total, loss):
            loss_events.add(step, loss)
            comfy.model_management.throw_exception_if_processing_interrupted()
            progress.update_absolute(step, total)

        metadata = dict(init_embedding.metadata, fps=settings.fps, motion_bucket_id=settings.motion_bucket_id,
                        augmentation_level=settings.augmentation_level, width=reference.shape[2],
                        height=reference.shape[1], source_video=source_name or "unknown", base_model=fingerprint,
                        learning_rate=settings.learning_rate, seed=settings.seed,
                        **{name: getattr(settings, name) for name in LEVER_SETTINGS})
        stats = RunStats()
        hooks = RunHooks(on_step=on_step, on_preview=on_preview,
                         on_held_out=lambda step, total, loss: loss_events.held_out(step, loss))
        tokens, losses, _ = invert_motion_with_files(
            model, latents, condition_latent, init_embedding.tokens, settings=settings, files=files,
            model_fingerprint=fingerprint, reference_fingerprint=reference_fingerprint, resume=resumed, hooks=hooks,
            rescue_metadata=metadata, stats=stats, appearance_copies=copies,
            reference_image=init_embedding.reference_image)
        if stats.preview_seconds:
            logging.info("Reenact Anything: %s", stats.describe_previews())
        if stats.held_out_seconds:
            logging.info("Reenact Anything: %s", stats.describe_held_out())
        if stats.stopped_at is not None:
            loss_events.stopped(stats.stopped_at, stats.stop_reason)
            progress.update_absolute(steps, steps)
        result = init_embedding.replace(
            tokens, **dict(metadata, steps=int(init_embedding.metadata.get("steps", 0)) + (stats.stopped_at or steps),
                           final_loss=losses[-1], **run_outcome(stats)))
        return io.NodeOutput(result, loss_curve_image(losses, held_out=stats.held_out, stopped_at=stats.stopped_at))
