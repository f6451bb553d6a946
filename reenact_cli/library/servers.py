"""The servers the library runs on: URLs of running ComfyUIs, or servers started here, one per GPU
(`--cuda-device`) or on the CPU. Each is checked before any job: it answers, it has the pack (and, with --toy,
the demo's toy nodes), it sees the SVD checkpoint the jobs name, and this machine can read its models folder
(embeddings and checkpoints come from there).

Started servers share one models folder (each one's base directory links models/ to it), so a job retried on
another server resumes from the checkpoint the first one wrote: --models-dir, else the found ComfyUI's own
models/ (where the user's SVD checkpoint is), else, for the toy, a scratch folder.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..api_client import ComfyClient
from ..comfy_server import ComfyServer, free_port
from ..locate import PACK_ROOT, find_comfyui_or_exit

PACK_NODES = ("LoadMotionReference", "OptimizeMotionEmbedding", "SaveMotionEmbedding", "LoadMotionEmbedding",
              "ApplyMotionEmbedding")
TOY_NODES = ("ReenactToySVDLoader", "ReenactToyImg2VidConditioning")


@dataclass
class Server:
    url: str
    models_dir: str | None = None           # where this machine reads the server's models/
    process: ComfyServer | None = field(default=None, repr=False)   # when started here
    name: str = ""

    def __post_init__(self):
        self.name = self.name or self.url


def check(server: Server, toy: bool, checkpoint: str | None = None) -> str | None:
    """Why the library cannot use `server`, or None. `checkpoint`: the SVD checkpoint the jobs load (not for toy)."""
    try:
        info = ComfyClient(server.url).object_info()
    except OSError as e:
        return f"{server.url} does not answer ({e})"
    missing = [n for n in PACK_NODES + (TOY_NODES if toy else ()) if n not in info]
    if missing:
        what = "the demo's toy nodes" if set(missing) <= set(TOY_NODES) else "the Reenact Anything pack"
        return f"{server.url} lacks {what} ({', '.join(missing)})"
    if not server.models_dir or not os.path.isdir(server.models_dir):
        return (f"{server.url}: its models folder is not readable here (given {server.models_dir!r}); pass "
                "--models-dir with the folder it uses (shared storage), or let the command start the servers")
    if checkpoint is not None:
        from ..run import missing_checkpoint_message
        available = info["ImageOnlyCheckpointLoader"]["input"]["required"]["ckpt_name"][0]
        if checkpoint not in available:
            return f"{server.url}: " + missing_checkpoint_message(checkpoint, available, server.models_dir)
    return None


def prepare(url: str, models_dir: str | None, toy: bool, checkpoint: str | None) -> str | None:
    """check(), then, for the toy, the demo's init embedding put into the server's models folder; why the server
    cannot be used, or None. Runs where the server is (in the Ray back-end, in its actor)."""
    problem = check(Server(url, models_dir), toy, checkpoint)
    if problem is None and toy:
        from ..demo import install_init
        from ..session import UserError
        try:
            install_init(os.path.dirname(models_dir))
        except (UserError, OSError) as e:
            return f"{url}: {e}"
    return problem


def default_models_dir(models_dir: str | None, toy: bool, workdir: str) -> str:
    """The models folder for servers started here (see the module's docstring)."""
    if models_dir:
        return models_dir
    if toy:
        return os.path.join(workdir, "models")
    return os.path.join(find_comfyui_or_exit(), "models")


def start_servers(count: int, workdir: str, devices: list[str] | None, toy: bool, models_dir: str | None = None,
                  die_with_parent: bool = False):
    """`count` servers (one per device in `devices`, else on the CPU), each with its own base directory under
    `workdir` and one shared models folder; the pack (and with toy, the demo's nodes) linked as custom nodes."""
    comfyui = find_comfyui_or_exit()
    shared = default_models_dir(models_dir, toy, workdir)
    os.makedirs(os.path.join(shared, "checkpoints"), exist_ok=True)
    servers = []
    try:
        for i in range(count):
            base = os.path.join(workdir, f"server{i}")
            os.makedirs(os.path.join(base, "custom_nodes"), exist_ok=True)
            if not os.path.lexists(os.path.join(base, "models")):
                os.symlink(shared, os.path.join(base, "models"))
            os.symlink(PACK_ROOT, os.path.join(base, "custom_nodes", "reenact-anything"))
            if toy:
                import reenact_toy
                os.symlink(os.path.dirname(os.path.abspath(reenact_toy.__file__)),
                           os.path.join(base, "custom_nodes", "reenact-anything-toy-demo"))
            device = devices[i] if devices else None
            extra = ("--cuda-device", device) if device is not None else ()
            process = ComfyServer(comfyui, base, port=free_port(), cpu=device is None, extra_args=extra,
                                  die_with_parent=die_with_parent)
            servers.append(Server(process.url, shared, process, name=f"server{i}" + (f" (GPU {device})"
                                                                                    if device else " (CPU)")))
        # All at once: each start is mostly ComfyUI importing itself. Not for die_with_parent: Linux's parent-death
        # signal follows the thread that started the child, and a pool's threads end.
        if die_with_parent or count < 2:
            for server in servers:
                server.process.start()
        else:
            with ThreadPoolExecutor(count) as pool:
                for started in [pool.submit(server.process.start) for server in servers]:
                    started.result()
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers):
    for server in servers:
        if server.process is not None:
            server.process.stop()
