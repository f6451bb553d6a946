"""Reenact a reference video's motion on a target image, from the command line, through a real ComfyUI.

    python -m reenact_cli.run --reference dance.mp4 --image cat.png [--checkpoint svd_xt.safetensors]

It reuses a ComfyUI already running at --server (default http://127.0.0.1:8188) or starts one with this pack
installed, uploads the two files, submits the bundled invert-and-transfer workflow (or the transfer workflow
with --embedding), shows progress, and writes the output video. It never downloads anything: a missing
checkpoint is reported with its file name and the folder it belongs in.
"""
import argparse
import filecmp
import json
import os
import sys

from reenact_core import svd_defaults

from .api_client import ComfyClient
from .lever_flags import APPLY_LEVERS, OPTIMIZE_LEVERS, add_lever_arguments, chosen_levers
from .locate import PACK_ROOT
from .session import (EXIT_CANCELLED, FAILURES, UserError, download_video, follow, preview_saver, report,
                      report_server_failure, scratch_folder, start_or_reuse)
from .workflow_api import patched, ui_to_api

DEFAULT_SERVER = "http://127.0.0.1:8188"
WORKFLOW_BOTH = "reenact_invert_and_transfer.json"
WORKFLOW_TRANSFER = "reenact_transfer_motion.json"
# What .comfyignore leaves out of the Registry package that --demo imports: a missing one means "get a git clone",
# any other missing module means "install it" (tests/test_main_command.py checks this against .comfyignore).
GIT_ONLY_MODULES = ("reenact_toy", "reenact_testkit", "reenact_cli.demo")
CHECKPOINT_SOURCES = {
    "svd_xt.safetensors": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt",
    "svd.safetensors": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m reenact_cli.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", help="video whose motion to learn (mp4, webm, mov, gif)")
    p.add_argument("--demo", action="store_true",
                   help="no SVD needed: invert the bundled toy clip and transfer it to the bundled toy target with "
                        "the small toy SVD trained in this repository (not SVD; the output says so)")
    p.add_argument("--image", help="target image to animate")
    p.add_argument("--embedding", help="a saved motion embedding (.safetensors) to apply instead of learning one")
    p.add_argument("--checkpoint", default="svd_xt.safetensors", help="SVD checkpoint name in models/checkpoints")
    p.add_argument("--output", help="where to write the video (default reenact_output.mp4, or "
                                    "reenact_demo_toy.mp4 with --demo)")
    p.add_argument("--frames", type=int, default=svd_defaults.FRAMES)
    p.add_argument("--width", type=int, default=svd_defaults.WIDTH)
    p.add_argument("--height", type=int, default=svd_defaults.HEIGHT)
    p.add_argument("--steps", type=int, help="the most optimisation steps (default: the bundled workflow's, which is "
                                             "the node's default; 60 with --demo)")
    p.add_argument("--sampler-steps", type=int, default=svd_defaults.SAMPLER_STEPS)
    p.add_argument("--preview-every", type=int, default=0, metavar="K",
                   help="every K optimisation steps, a short preview of the motion learned so far, saved to "
                        "<output name>_previews_NNNNN/step_KKKKK.webp (what each costs: the server's log after the "
                        "run); 0 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--server", default=DEFAULT_SERVER, help="a running ComfyUI to reuse")
    p.add_argument("--start-server", action="store_true", help="always start a new server on a free port")
    p.add_argument("--base-directory", help="ComfyUI base directory (models, input, output) for a started server")
    p.add_argument("--cpu", action="store_true", help="start the server with --cpu")
    add_lever_arguments(p)
    args = p.parse_args(argv)
    if args.demo:
        if args.reference or args.image or args.embedding:
            p.error("--demo uses its bundled toy clip and target; leave out --reference, --image and --embedding")
        if levers := chosen_levers(args, {**OPTIMIZE_LEVERS, **APPLY_LEVERS}):
            p.error(f"--demo runs the toy's own graph at its own settings; leave out {', '.join(levers)}")
        args.output, args.steps = output_path(p, args.output, "reenact_demo_toy.mp4"), args.steps or 60
        return args
    if not args.image:
        p.error("give --image (the target image to animate), or --demo")
    if not args.reference and not args.embedding:
        p.error("give --reference (learn the motion) or --embedding (apply a saved one)")
    args.output = output_path(p, args.output, "reenact_output.mp4")
    return args


def output_path(parser, given: str | None, default: str) -> str:
    """Where the video goes; never over an existing file. A given --output that exists is refused before any work;
    the default name, when taken, becomes the first free <stem>_NNNNN<suffix> (as ComfyUI numbers its outputs)."""
    if given is not None:
        if os.path.exists(given):
            parser.error(f"expected --output to name a new file, got {given}, which exists; move it or pick another")
        return given
    stem, suffix = os.path.splitext(default)
    path, counter = default, 0
    while os.path.exists(path):
        counter += 1
        path = f"{stem}_{counter:05}{suffix}"
    return path


def check_local_files(args):
    """Cheap checks before any server starts."""
    for label, path in (("reference video", args.reference), ("target image", args.image),
                        ("motion embedding", args.embedding)):
        if path and not os.path.isfile(path):
            raise UserError(f"expected the {label} at {path}, but there is no such file")
    if args.embedding and not args.embedding.endswith(".safetensors"):
        raise UserError(f"expected a .safetensors motion embedding, got {os.path.basename(args.embedding)}")
    for name in ("width", "height"):
        value = getattr(args, name)
        if value <= 0 or value % 64:
            raise UserError(f"expected --{name} as a positive multiple of 64, got {value}")
    too_few_steps = args.steps is not None and args.steps < 1
    if args.frames < 2 or too_few_steps or args.sampler_steps < 1 or args.preview_every < 0:
        raise UserError("expected --frames of at least 2, --steps and --sampler-steps of at least 1, and "
                        "--preview-every of at least 0")


def missing_checkpoint_message(name, available, models_dir):
    source = CHECKPOINT_SOURCES.get(name, "the model's release page")
    where = os.path.join(models_dir, "checkpoints") if models_dir else "ComfyUI/models/checkpoints"
    found = ", ".join(available) if available else "none"
    return (f"missing checkpoint: {name}\n"
            f"  download it from {source} (no download happens here)\n"
            f"  and put it in {where}/{name}\n"
            f"  checkpoints this ComfyUI sees now: {found}")


def build_prompt(client, args, uploaded):
    name = WORKFLOW_TRANSFER if args.embedding else WORKFLOW_BOTH
    with open(os.path.join(PACK_ROOT, "example_workflows", name)) as f:
        prompt = ui_to_api(json.load(f), client.object_info())
    changes = {"ImageOnlyCheckpointLoader": {"ckpt_name": args.checkpoint},
               "LoadImage": {"image": uploaded["image"]},
               "SVD_img2vid_Conditioning": {"width": args.width, "height": args.height, "video_frames": args.frames},
               "KSampler": {"steps": args.sampler_steps, "seed": args.seed},
               "SaveVideo": {"filename_prefix": "video/reenact_cli"},
               "ApplyMotionEmbedding": chosen_levers(args, APPLY_LEVERS)}
    if args.embedding:
        changes["LoadMotionEmbedding"] = {"embedding_name": uploaded["embedding"]}
    else:
        changes.update({"LoadMotionReference": {"video": uploaded["reference"], "frame_count": args.frames,
                                                "width": args.width, "height": args.height},
                        "OptimizeMotionEmbedding": {"seed": args.seed, "preview_every": args.preview_every,
                                                    **({"steps": args.steps} if args.steps else {}),
                                                    **chosen_levers(args, OPTIMIZE_LEVERS)},
                        "SaveMotionEmbedding": {"filename_prefix": "motion/reenact_cli"}})
    return patched(prompt, changes)


def embedding_target(args, server):
    """Motion embeddings live in the server's models/motion_embeddings; a started server's folder is known.
    The given file goes to reenact_cli/ there under a name no other content has (see place_embedding)."""
    if server is None:
        raise UserError("--embedding with a running server: copy the file into that ComfyUI's "
                        "models/motion_embeddings/ and run again with --start-server, or use --reference")
    folder = os.path.join(args.base_directory or server.comfyui_path, "models", "motion_embeddings", "reenact_cli")
    return f"reenact_cli/{os.path.basename(place_embedding(args.embedding, folder))}"


def place_embedding(source: str, folder: str) -> str:
    """`source` in `folder`: the file already there with the same name or a numbered form of it (stem_NNNNN) and
    the same bytes, else a fresh numbered copy. A same-named file with other contents is never used (it would
    apply another motion) nor overwritten (it may be the user's)."""
    os.makedirs(folder, exist_ok=True)
    stem, suffix = os.path.splitext(os.path.basename(source))
    for name in sorted(os.listdir(folder)):
        candidate = os.path.join(folder, name)
        if is_copy_name(name, stem, suffix) and os.path.isfile(candidate) and filecmp.cmp(source, candidate,
                                                                                           shallow=False):
            return candidate
    return copy_to_numbered(source, folder, stem, suffix)


def is_copy_name(name: str, stem: str, suffix: str) -> bool:
    """`stem<suffix>` or `stem_NNNNN<suffix>`, the names place_embedding gives a file."""
    counter = name[len(stem) + 1:-len(suffix)] if name.startswith(stem + "_") and name.endswith(suffix) else ""
    return name == stem + suffix or (len(counter) == 5 and counter.isdigit())


def copy_to_numbered(source: str, folder: str, stem: str, suffix: str) -> str:
    """A copy at folder/stem_NNNNN<suffix> with a counter no file has; written through a temporary name, so an
    error or Ctrl-C mid-copy leaves neither half a file nor the empty reservation."""
    import shutil

    from reenact_core.file_writes import create_empty, fill_reserved, reserve_numbered
    target = reserve_numbered(folder, stem, suffix, create_empty)
    fill_reserved(target, lambda tmp: shutil.copyfile(source, tmp))
    return target


def run(args) -> int:
    with scratch_folder("reenact_cli_") as workdir:
        server = None
        try:
            check_local_files(args)
            server = start_or_reuse(args, workdir)
            return run_on(args, server)
        except FAILURES as e:
            return report_server_failure(e, os.path.join(workdir, "comfyui.log"))
        finally:
            if server is not None:
                server.stop()


def run_on(args, server) -> int:
    """Everything after the server is up: `server` is the one started here, or None for the one at --server."""
    url = server.url if server else args.server
    client = ComfyClient(url)
    info = client.object_info()
    if "OptimizeMotionEmbedding" not in info:
        raise UserError(f"the ComfyUI at {url} does not have the Reenact Anything nodes installed; "
                        f"clone this pack into its custom_nodes/ folder, or use --start-server")
    available = info["ImageOnlyCheckpointLoader"]["input"]["required"]["ckpt_name"][0]
    if args.checkpoint not in available:
        models_dir = os.path.join(args.base_directory or server.comfyui_path, "models") if server else None
        raise UserError(missing_checkpoint_message(args.checkpoint, available, models_dir))
    uploaded = {"image": client.upload(args.image, subfolder="reenact_cli")}
    if args.reference:
        uploaded["reference"] = client.upload(args.reference, subfolder="reenact_cli")
    if args.embedding:
        uploaded["embedding"] = embedding_target(args, server)
        print(f"motion embedding {args.embedding} -> the server's models/motion_embeddings/{uploaded['embedding']}",
              flush=True)
    output_parent, output_name = os.path.split(os.path.abspath(args.output))
    saver = preview_saver(client, output_parent, os.path.splitext(output_name)[0] + "_previews")
    status, history = follow(client, build_prompt(client, args, uploaded),
                             on_preview=saver if args.preview_every > 0 else None)
    if status:
        return status
    print(f"wrote {os.path.abspath(download_video(client, history, args.output))}")
    return 0


def demo_import_problem(error: ImportError, flag: str = "--demo") -> str:
    """What --demo (or the library's --toy) lacks, by name: a git-only part of the repository (GIT_ONLY_MODULES), or
    an installable module such as av, or a library a module needs (an ImportError without a module name, e.g. a
    missing shared library)."""
    name = error.name or ""
    if isinstance(error, ModuleNotFoundError) and any(name == m or name.startswith(m + ".") for m in GIT_ONLY_MODULES):
        return (f"{flag} needs a git clone of the repository: this copy has no {name} "
                f"(the Registry package leaves the demo and its toy model out)")
    if isinstance(error, ModuleNotFoundError) and name:
        return (f"{flag} needs the Python module {name}, which is not installed here (install this pack's "
                f"requirements.txt and ComfyUI's: pip install -r requirements.txt in each)")
    return f"{flag} could not import {name or 'one of its modules'}: {error}"


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.demo:
            try:
                from .demo import run_demo  # here, not at the top: the demo needs torch and PyAV, a plain run does not
            except ImportError as e:  # a Registry install leaves the demo and the toy model out (.comfyignore)
                sys.exit(report(UserError(demo_import_problem(e))))
            sys.exit(run_demo(args))
        sys.exit(run(args))
    except KeyboardInterrupt:  # outside a queued run (starting, uploading): the finally blocks have cleaned up
        print("\ncancelled", file=sys.stderr)
        sys.exit(EXIT_CANCELLED)


if __name__ == "__main__":
    main()
