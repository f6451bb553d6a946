"""One inversion with its files: the resume check, checkpoints every K steps, and a rescue on overflow.

Why a separate module: invert_motion is the maths and touches no files; the node is a thin adapter.
What a run keeps when it fails lives here, in one place:
- Cancel or an exception: the checkpoints written so far (save_every > 0), nothing else.
- A non-finite loss: the last tokens whose loss was finite, saved as an ordinary motion embedding in
  rescued/<run name>_NNNNN.safetensors; the error names that file and the setting to change.
"""
import dataclasses
import os
from dataclasses import dataclass

from .embedding_file import save_embedding
from .errors import ReenactError
from .inversion import InversionSettings, NonFiniteLoss, RunHooks, RunState, RunStats, invert_motion
from .motion_embedding import MotionEmbedding
from .run_checkpoints import (CHECKPOINTS_SUBFOLDER, list_checkpoints, load_checkpoint, new_run_folder,
                              require_resumable, run_header, save_checkpoint)

RESCUE_SUBFOLDER = "rescued"
NO_RESUME = "none"


@dataclass(frozen=True)
class RunFiles:
    """Where a run's files go and how many it keeps; `resume` is a name from list_checkpoints or 'none'."""
    embeddings_folder: str
    run_name: str = "motion"
    save_every: int = 0
    keep_checkpoints: int = 3
    resume: str = NO_RESUME


FILE_DEFAULTS = RunFiles(embeddings_folder="")  # the defaults alone, for the node's schema


def run_name_problem(run_name: str) -> str | None:
    """A run name becomes a folder name under checkpoints/ and rescued/: no slashes, no '.' or '..'."""
    if not run_name or "/" in run_name.replace("\\", "/") or run_name.strip() in (".", ".."):
        return f"expected a run name without slashes (like 'wave'), got {run_name!r}"
    return None


@dataclass
class Resume:
    name: str
    state: RunState
    header: dict


def load_resume(files: RunFiles, settings: InversionSettings, model_fingerprint: str,
                reference_fingerprint: str, init_shape) -> tuple[Resume | None, InversionSettings]:
    """The checkpoint to resume and the settings to run with (the checkpoint's seed: its RNG state goes on).

    Runs before any encoding or optimisation, so a mismatch costs nothing.
    """
    if files.resume in (None, "", NO_RESUME):
        return None, settings
    known = list_checkpoints(files.embeddings_folder)
    if files.resume not in known:
        raise ReenactError(f"expected a run checkpoint under models/motion_embeddings/{CHECKPOINTS_SUBFOLDER}/, "
                           f"got {files.resume!r}, which is not there ({len(known)} checkpoints found)")
    state, header = load_checkpoint(os.path.join(files.embeddings_folder, files.resume))
    seed = int(header.get("settings", {}).get("seed", settings.seed))
    settings = dataclasses.replace(settings, seed=seed)
    require_resumable(files.resume, header, state, settings, model_fingerprint, reference_fingerprint, init_shape)
    return Resume(files.resume, state, header), settings


def invert_motion_with_files(model_patcher, reference_latents, condition_latent, init_tokens, *,
                             settings: InversionSettings, files: RunFiles, model_fingerprint: str,
                             reference_fingerprint: str, resume: Resume | None = None, hooks: RunHooks = RunHooks(),
                             rescue_metadata: dict | None = None, stats: RunStats | None = None,
                             appearance_copies=(), reference_image=None):
    """invert_motion plus checkpoint files and the overflow rescue; returns (tokens, losses, run folder or None).
    `hooks` (its on_checkpoint is this function's), `stats`, `appearance_copies` and `reference_image` go to
    invert_motion; `reference_image` goes into a rescued embedding too, as into the finished one."""
    run_folder = None
    header = run_header(settings, model_fingerprint, reference_fingerprint, files.run_name,
                        resume.name if resume else None)

    def on_checkpoint(state: RunState):
        nonlocal run_folder
        if run_folder is None:
            run_folder = new_run_folder(files.embeddings_folder, files.run_name)
        save_checkpoint(state, run_folder, header, files.keep_checkpoints)

    try:
        tokens, losses = invert_motion(model_patcher, reference_latents, condition_latent, init_tokens,
                                       settings=settings, hooks=dataclasses.replace(hooks, on_checkpoint=on_checkpoint),
                                       resume=resume.state if resume else None, save_every=files.save_every,
                                       stats=stats, appearance_copies=appearance_copies,
                                       reference_image=reference_image)
    except NonFiniteLoss as e:
        meta = dict(rescue_metadata or {})
        meta.update(steps=int(meta.get("steps", 0)) + e.good_steps, rescued="non-finite loss",
                    final_loss=e.losses[-1] if e.losses else None)
        path = save_embedding(MotionEmbedding(e.last_good_tokens, meta, reference_image), files.embeddings_folder,
                              f"{RESCUE_SUBFOLDER}/{files.run_name}")
        name = os.path.relpath(path, files.embeddings_folder).replace(os.sep, "/")
        raise ReenactError(f"{e}. The last good embedding (after {e.good_steps} of {settings.steps} steps) is "
                           f"saved as motion_embeddings/{name}; load it with Load Motion Embedding or "
                           f"connect it as init_embedding to go on") from e
    return tokens, losses, run_folder
