"""The plumbing the main command (run.py) and the demo (demo.py) share, so that neither imports the other for it.

The error a user can fix and the exit codes, starting or reusing a ComfyUI server, following a queued prompt
to its end with a progress display, and fetching the video it wrote. Dependencies run one way:
run -> demo -> session -> api_client, comfy_server, locate, progress, workflow_api.
"""
import contextlib
import os
import shutil
import sys
import tempfile

from .api_client import ApiError
from .comfy_server import ComfyServer, ServerError, free_port, log_tail, responds
from .locate import PACK_ROOT, find_comfyui_or_exit
from .progress import ProgressDisplay
from .workflow_api import WorkflowError

EXIT_BAD_INPUT, EXIT_RUN_FAILED, EXIT_CANCELLED = 2, 1, 130


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


FAILURES = (UserError, WorkflowError, ApiError, ServerError)  # what report() turns into one line and an exit code


def report(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT if isinstance(error, UserError) else EXIT_RUN_FAILED


@contextlib.contextmanager
def scratch_folder(prefix: str):
    """A temporary folder for a started server's config and log (for the demo, its ComfyUI folders too), removed
    however the run ends: success, error or Ctrl-C. Stop the server inside the `with`, so nothing writes there."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # symlinks inside (custom_nodes/<pack>) are unlinked, not followed


def report_server_failure(error: Exception, log_path: str) -> int:
    """report(), plus the started server's log tail when the server itself failed and the message lacks it."""
    status = report(error)
    tail = log_tail(log_path) if isinstance(error, ServerError) else ""
    if tail.strip() and tail.strip()[-200:] not in str(error):
        print(f"the end of ComfyUI's log (its temporary folder is removed now):\n{tail}", file=sys.stderr)
    return status


def custom_nodes_config(workdir, node_dirs: dict):
    """An extra_model_paths.yaml that adds `node_dirs` ({name: folder}) as custom nodes."""
    nodes_dir = os.path.join(workdir, "custom_nodes")
    os.makedirs(nodes_dir, exist_ok=True)
    for name, folder in node_dirs.items():
        os.symlink(folder, os.path.join(nodes_dir, name))
    config = os.path.join(workdir, "extra_model_paths.yaml")
    with open(config, "w") as f:
        f.write(f"reenact_anything:\n  custom_nodes: {nodes_dir}\n")
    return config


def start_server(args, workdir, extra_nodes: dict | None = None):
    """Start ComfyUI with this pack (unless it already sits in that ComfyUI's custom_nodes) and `extra_nodes`."""
    comfyui = find_comfyui_or_exit()
    inside = os.path.dirname(os.path.dirname(PACK_ROOT)) == os.path.abspath(comfyui)
    node_dirs = dict({} if inside else {"reenact-anything": PACK_ROOT}, **(extra_nodes or {}))
    extra = ["--extra-model-paths-config", custom_nodes_config(workdir, node_dirs)] if node_dirs else []
    print(f"starting ComfyUI from {comfyui} (models, input and output under {args.base_directory or comfyui})"
          f" ...", flush=True)
    server = ComfyServer(comfyui, args.base_directory, port=free_port(), cpu=args.cpu, extra_args=tuple(extra),
                         log_path=os.path.join(workdir, "comfyui.log"))
    try:
        return server.start()
    except BaseException:  # Ctrl-C or a failed start while ComfyUI boots: leave no server running
        server.stop()
        raise


def start_or_reuse(args, workdir):
    """A started server, or None when a ComfyUI answers at --server and --start-server was not given."""
    if args.start_server or not responds(args.server):
        return start_server(args, workdir)
    return None


def preview_saver(client, parent: str, base: str):
    """on_preview for ProgressDisplay: each motion preview is fetched from the server (ComfyUI empties its temp
    folder when it starts) into a folder of this run's own, parent/base_NNNNN/step_KKKKK.webp."""
    folder = None

    def save(event: dict) -> str:
        nonlocal folder
        if folder is None:
            from reenact_core.file_writes import reserve_numbered
            folder = reserve_numbered(parent, base, "", os.mkdir)
        try:
            return client.download(event["image"], os.path.join(folder, f"step_{int(event['step']):05}.webp"))
        except OSError as e:  # a preview that cannot be fetched must not stop the run it illustrates
            return f"not fetched ({e}); the server keeps it in its temp/{event['image'].get('subfolder', '')}/"
    return save


def follow(client, prompt, on_preview=None) -> tuple[int, dict | None]:
    """Run `prompt` with a progress bar; Ctrl-C asks the server to stop it. Returns (exit status, history).
    `on_preview` (preview_saver) keeps the motion previews the run sends."""
    display = ProgressDisplay(prompt, on_preview=on_preview)
    try:
        result = client.run(prompt, on_event=display.on_event, timeout=7 * 24 * 3600)
    except KeyboardInterrupt:
        try:  # this command's prompt only: a running ComfyUI it reuses may hold its user's prompts too
            for prompt_id in client.queued:
                client.cancel(prompt_id, timeout=10)
        except (OSError, ApiError):  # a terminal's Ctrl-C also reaches a server this command started: it exits
            pass
        print("\ncancelled; the server was asked to stop", file=sys.stderr)
        return EXIT_CANCELLED, None
    finally:
        display.close()
    if result.status == "server_down":
        print(f"the server at {client.url} went away during the run (its connection closed)", file=sys.stderr)
        return EXIT_RUN_FAILED, None
    if result.status != "success":
        error = result.error or {}
        print(f"the run ended as {result.status}: {error.get('node_type', '')} "
              f"{error.get('exception_message', '')}".rstrip(), file=sys.stderr)
        return (EXIT_CANCELLED if result.status == "interrupted" else EXIT_RUN_FAILED), None
    history = client.history(result.prompt_id)
    for output in history.get("outputs", {}).values():
        for text in output.get("text", []):
            print(f"embedding {text} (in the server's models/motion_embeddings/)")
    return 0, history


def download_video(client, history, destination):
    """The run's first video output, saved to `destination`."""
    videos = [f for out in history.get("outputs", {}).values() for f in out.get("images", [])
              if f["filename"].endswith((".mp4", ".webm"))]
    if not videos:
        raise UserError("the run finished without a video output")
    return client.download(videos[0], destination)
