"""python -m reenact_cli.library learn | apply | status: a motion library over several ComfyUI servers.

  learn   --library DIR --references FILES/FOLDERS/GLOBS ...
  apply   --library DIR --images FILES/FOLDERS/GLOBS ... [--motions JOB_ID ...] [--pairing all|zip]
  status  --library DIR

Servers: --servers URL ... (running ComfyUIs with the pack; --models-dir the models folder they use, readable
here), or --start N (N servers started here: one per --cuda-devices entry, else on the CPU). Back-ends: local (a
thread per server; no extra dependency) or ray (--backend ray [--ray-address ADDRESS]; `pip install ray`).
The manifest (DIR/manifest.sqlite) is the source of truth: a rerun skips what is done and goes on with the rest
(--retry-failed: failed jobs too).
Exit: 0 when every job is done, 1 when some failed or are still pending, 2 for bad input, 130 on Ctrl-C.
"""
import argparse
import json
import os
import sys

from ..lever_flags import APPLY_LEVERS, OPTIMIZE_LEVERS, add_lever_arguments, chosen_levers
from ..run import demo_import_problem
from ..session import EXIT_BAD_INPUT, EXIT_CANCELLED, EXIT_RUN_FAILED, scratch_folder
from . import jobs as job_kit
from .manifest import DONE, Manifest
from .report import Progress, contact_sheet, summary_table
from .scheduler import Scheduler

EXIT_INCOMPLETE = EXIT_RUN_FAILED   # some jobs failed or are still pending


def parse(argv=None):
    p = argparse.ArgumentParser(prog="python -m reenact_cli.library", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("learn", "apply", "status"))
    p.add_argument("--library", required=True, help="the library's folder: manifest, embeddings, videos, sheet")
    p.add_argument("--references", nargs="+", default=[], help="learn: videos, folders of videos, or globs")
    p.add_argument("--images", nargs="+", default=[], help="apply: images, folders of images, or globs")
    p.add_argument("--motions", nargs="+", help="apply: learn job ids (default: every learned motion)")
    p.add_argument("--pairing", choices=("all", "zip"), default="all")
    p.add_argument("--servers", nargs="+", default=[], help="URLs of running ComfyUI servers")
    p.add_argument("--models-dir", help="the models folder the --servers use, readable here (shared storage)")
    p.add_argument("--start", type=int, default=0, help="start this many servers here")
    p.add_argument("--cuda-devices", help="comma-separated GPU indices for the started servers (default: CPU)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", help="an existing Ray cluster (default: ray.init() on this machine)")
    p.add_argument("--attempts", type=int, default=3, help="tries per job, over different servers where it can")
    p.add_argument("--retry-failed", action="store_true",
                   help="put this command's failed jobs back (their inputs checked again) and run them")
    p.add_argument("--stall-timeout", type=float, default=600.0,
                   help="seconds without a word from a server before its job is given to another")
    p.add_argument("--toy", action="store_true", help="the demo's toy model instead of SVD (tests, a first try)")
    p.add_argument("--checkpoint", default="svd_xt.safetensors")
    p.add_argument("--frames", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--steps", type=int, help="default: the bundled workflow's (the node's default)")
    p.add_argument("--sampler-steps", type=int,
                   help="the transfer's KSampler steps (default: the bundled workflow's; --toy: the demo's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=50, help="run checkpoints, for resuming on another server")
    add_lever_arguments(p)
    return p.parse_args(argv)


def settings_of(args) -> dict:
    """What decides a job's result (and so its id)."""
    if args.toy:
        from reenact_toy import toy_demo

        from .. import demo
        spec = toy_demo.load_spec()
        frames, side = args.frames or spec["frames"], args.width or spec["size_px"]
        return {"toy": True, "frames": frames, "width": side, "height": side, "fps": spec["fps"],
                "steps": args.steps or 60, "seed": args.seed, "save_every": args.save_every,
                "sampler_steps": args.sampler_steps or demo.SAMPLER_STEPS, **levers_of(args)}
    from reenact_core.inversion import DEFAULTS  # the bundled workflow's steps are the node's default
    from reenact_core import svd_defaults
    return {"checkpoint": args.checkpoint, "frames": args.frames or svd_defaults.FRAMES,
            "width": args.width or svd_defaults.WIDTH, "height": args.height or svd_defaults.HEIGHT,
            "steps": args.steps or DEFAULTS.steps, "seed": args.seed, "save_every": args.save_every,
            "sampler_steps": args.sampler_steps or svd_defaults.SAMPLER_STEPS, **levers_of(args)}


def levers_of(args) -> dict:
    """The levers set on the command line that act on this command's jobs (learn: Optimize's, apply: Apply's), under
    "levers" (part of a job's id); none set, no key, so the ids of libraries made before the levers stay the same."""
    levers = chosen_levers(args, OPTIMIZE_LEVERS if args.command == "learn" else APPLY_LEVERS)
    return {"levers": levers} if levers else {}


def make_jobs(args, manifest, settings):
    if args.command == "learn":
        references = job_kit.expand_paths(args.references, job_kit.VIDEO_SUFFIXES)
        if not references:
            raise SystemExit(f"expected reference videos in --references, got none from {args.references}")
        return job_kit.learn_jobs(references, settings)
    learned = {i: s for i, s in manifest.read().items() if s.kind == "learn" and s.status == DONE}
    chosen = args.motions or list(learned)
    unknown = [m for m in chosen if m not in learned]
    if unknown or not chosen:
        raise SystemExit(f"expected learned motions of this library, got {unknown or 'none learned yet'}")
    images = job_kit.expand_paths(args.images, job_kit.IMAGE_SUFFIXES)
    if not images:
        raise SystemExit(f"expected images in --images, got none from {args.images}")
    try:
        return job_kit.apply_jobs({m: learned[m].output for m in chosen}, images, settings, args.pairing)
    except ValueError as e:
        raise SystemExit(str(e))


def backend_of(args):
    if args.backend == "ray":
        from .backend_ray import RayBackend
        return RayBackend(args)
    from .backend_local import LocalBackend
    return LocalBackend(args)


def main(argv=None) -> int:
    args = parse(argv)
    manifest = Manifest(args.library)
    if args.command == "status":
        states = manifest.read()
        print(summary_table(states, list(states)))
        return 0
    if args.toy:  # before any work: a Registry install has no toy model (.comfyignore)
        try:
            import reenact_toy  # noqa: F401
            from .. import demo  # noqa: F401
        except ImportError as e:
            print(f"error: {demo_import_problem(e, '--toy')}", file=sys.stderr)
            return EXIT_BAD_INPUT
    settings = settings_of(args)
    try:
        jobs = make_jobs(args, manifest, settings)
    except SystemExit as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    devices = args.cuda_devices.split(",") if args.cuda_devices else None
    if args.start and devices and len(devices) != args.start:
        print(f"error: expected {args.start} --cuda-devices, got {devices}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        backend = backend_of(args)
    except SystemExit as e:  # --backend ray without Ray installed
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with scratch_folder("reenact_library_") as workdir:
        try:
            try:
                servers = backend.start(args.servers, args.start, workdir)
            except SystemExit as e:  # a server or an actor that did not start: said, not a traceback
                print(f"error: {e}", file=sys.stderr)
                return EXIT_RUN_FAILED
            checkpoint = None if args.toy else args.checkpoint
            problems = [p for p in (backend.check(s, args.toy, checkpoint) for s in servers) if p]
            if problems or not servers:
                print("error: " + ("\n".join(problems) if problems else "expected --servers or --start"),
                      file=sys.stderr)
                return EXIT_BAD_INPUT
            return run_library(args, manifest, servers, backend, jobs)
        finally:
            backend.stop()


def run_library(args, manifest, servers, backend, jobs) -> int:
    manifest.open_run()
    scheduler = Scheduler(manifest, servers, backend, args.attempts)
    progress = Progress(scheduler)
    scheduler.on_change, scheduler.notice = progress.show, progress.write
    try:
        states = scheduler.run(jobs, retry_failed=args.retry_failed)
    except KeyboardInterrupt:
        progress.close()
        print("\ncancelled: running jobs were stopped on their servers and given back; rerun to go on",
              file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        manifest.close_run()
    progress.close()
    ids = [j.id for j in jobs]
    print(summary_table(states, ids))
    sheet = contact_sheet(states, [i for i, s in states.items() if s.kind in ("learn", "apply")],
                          os.path.join(manifest.library, "contact_sheet.png"))
    if sheet:
        print(f"contact sheet: {sheet}")
    print(json.dumps({"done": sum(states[i].status == DONE for i in ids), "jobs": len(ids)}))
    return 0 if all(states[i].status == DONE for i in ids) else EXIT_INCOMPLETE


if __name__ == "__main__":
    sys.exit(main())
