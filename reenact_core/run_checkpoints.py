"""Run checkpoints: save every K steps, keep the newest few, resume bit for bit.

Why: an inversion is long (benchmarks/README.md has the times); a crash, a Cancel or an fp16 overflow must not
cost the run. A checkpoint holds what the next step depends on, nothing more: the tokens, AdamW's
state tensors, the fp16 loss scale, the CPU generator's state and the losses so far. Tensors go in
a .safetensors file, everything else in its metadata as JSON, so loading one never runs code (no
pickle). Each run, new or resumed, writes into a fresh folder checkpoints/<run name>_NNNNN/, so no
file is ever overwritten and pruning only touches that run's own files.

Resuming checks what would make the continued run a different optimisation problem (the model, the
reference video, the embedding's shape, and the settings InversionSettings marks as the problem's: noise,
conditioning, the held-out draws) and names every difference. Learning rate, schedule, precision and memory
settings may change on resume: switching to bf16 or a lower learning rate is the remedy for an overflow.
"""
import json
import os

import torch

from .checkpoint_names import CHECKPOINTS_SUBFOLDER, STEP_FILE, list_checkpoints  # noqa: F401 (re-exported)
from .embedding_file import RUN_CHECKPOINT_FORMAT, TENSOR_KEY, safe_prefix
from .errors import ReenactError
from .inversion import DEFAULTS, InversionSettings, RunState, require_steps_beyond
from .file_writes import create_empty, reserve_numbered
from .safe_files import read_safetensors, short_fingerprint, write_reserved

FORMAT_NAME = RUN_CHECKPOINT_FORMAT
FORMAT_VERSION = 1
# Settings that define the optimisation problem: a resumed run must use the checkpoint's values.
PROBLEM_SETTINGS = InversionSettings.same_on_resume()


def tensor_fingerprint(t: torch.Tensor) -> str:
    """Short hash of a tensor's values: tells reference videos apart without keeping them."""
    return short_fingerprint(t.detach().float().cpu().contiguous().numpy().tobytes())


def new_run_folder(embeddings_folder: str, run_name: str) -> str:
    """A fresh checkpoints/<run_name>_NNNNN folder, created atomically (never shared with another run)."""
    name = safe_prefix(run_name)
    return reserve_numbered(os.path.join(embeddings_folder, CHECKPOINTS_SUBFOLDER, os.path.dirname(name)),
                            os.path.basename(name), "", os.mkdir)


def _header_strings(header: dict) -> dict:
    return {k: json.dumps(v) for k, v in header.items()}


def save_checkpoint(state: RunState, run_folder: str, header: dict, keep: int) -> str:
    """Write step_NNNNNN.safetensors into the run's folder, then delete the oldest beyond `keep` (0 = all)."""
    path = os.path.join(run_folder, f"step_{state.step:06}.safetensors")
    tensors = {TENSOR_KEY: state.tokens.float().contiguous(),
               "rng_state": state.rng_state.contiguous(),
               "losses": torch.tensor(state.losses, dtype=torch.float64),
               "held_out": torch.tensor(state.held_out, dtype=torch.float64).reshape(-1, 2)}
    tensors.update({f"adamw.{k}": v.contiguous() for k, v in state.optimizer.items()})
    frames, tokens, dim = state.tokens.shape
    meta = dict(header, step=state.step, scaler=state.scaler, frames=frames - 1, tokens=tokens, dim=dim)
    strings = _header_strings(meta)
    strings.update(format=FORMAT_NAME, format_version=str(FORMAT_VERSION))
    create_empty(path)  # refuses to overwrite
    write_reserved(path, tensors, strings)
    if keep > 0:
        steps = sorted((int(m.group(1)), f) for f in os.listdir(run_folder) if (m := STEP_FILE.match(f)))
        for _, f in steps[:-keep]:
            os.remove(os.path.join(run_folder, f))
    return path


def load_checkpoint(path: str) -> tuple[RunState, dict]:
    """(RunState, header) from a run checkpoint; refuses pickles, other files and truncated ones."""
    raw, tensors = read_safetensors(path, "run checkpoint", (FORMAT_NAME,), FORMAT_VERSION)
    header = {k: json.loads(v) for k, v in raw.items() if k not in ("format", "format_version")}
    state = RunState(step=int(header["step"]), tokens=tensors[TENSOR_KEY],
                     optimizer={k.removeprefix("adamw."): v for k, v in tensors.items() if k.startswith("adamw.")},
                     scaler=header.get("scaler") or {}, rng_state=tensors["rng_state"],
                     losses=tensors["losses"].tolist(),
                     held_out=[(int(step), loss) for step, loss in tensors["held_out"].tolist()]
                     if "held_out" in tensors else [])
    return state, header


def run_header(settings: InversionSettings, model_fingerprint: str, reference_fingerprint: str,
               run_name: str, resumed_from: str | None = None) -> dict:
    return {"settings": settings.as_dict(), "model": model_fingerprint, "reference": reference_fingerprint,
            "run_name": run_name, "resumed_from": resumed_from}


def resume_differences(header: dict, state: RunState, settings: InversionSettings, model_fingerprint: str,
                       reference_fingerprint: str, init_shape) -> list[str]:
    """Every way this run differs from the checkpoint's in what it optimises, as 'what (checkpoint X, now Y)'."""
    diffs = []
    saved = header.get("settings", {})
    now = settings.as_dict()
    for key in PROBLEM_SETTINGS:
        was = saved.get(key, getattr(DEFAULTS, key))  # a setting newer than the checkpoint had its default
        if was != now[key]:
            diffs.append(f"{key} (checkpoint {was}, now {now[key]})")
    if header.get("model") != model_fingerprint:
        diffs.append(f"model (checkpoint {header.get('model')}, now {model_fingerprint})")
    if header.get("reference") != reference_fingerprint:
        diffs.append(f"reference frames (checkpoint {header.get('reference')}, now {reference_fingerprint})")
    if tuple(state.tokens.shape) != tuple(init_shape):
        diffs.append(f"embedding shape (checkpoint {tuple(state.tokens.shape)}, now {tuple(init_shape)})")
    return diffs


def require_resumable(name: str, header: dict, state: RunState, settings: InversionSettings,
                      model_fingerprint: str, reference_fingerprint: str, init_shape) -> None:
    diffs = resume_differences(header, state, settings, model_fingerprint, reference_fingerprint, init_shape)
    if diffs:
        raise ReenactError(f"expected the same run to resume {name}, got one that differs in: {'; '.join(diffs)}. "
                           f"Set these back, or start a new run (resume = none)")
    require_steps_beyond(state.step, settings.steps, name)
