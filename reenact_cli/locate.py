"""Where to find ComfyUI: COMFYUI_PATH, else the ComfyUI holding this pack, else ~/ComfyUI.

Shared by the tests, the benchmarks and the main-job command, so all three look in the same places.
"""
import os
import sys

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOW_TO_GET_COMFYUI = (
    "ComfyUI was not found (looked at COMFYUI_PATH, the ComfyUI holding this pack, and ~/ComfyUI). Get a checkout of\n"
    "ComfyUI 0.3.64 or newer:\n"
    "  git clone https://github.com/comfyanonymous/ComfyUI ~/ComfyUI\n"
    "or point COMFYUI_PATH at an existing one, or clone this pack into ComfyUI/custom_nodes/. Then set up the Python\n"
    "that runs it as the README's Install section says (a git clone's install script never replaces an installed\n"
    "torch): https://github.com/reenact-anything/ComfyUI-Reenact-Anything#install")


def candidates():
    env = os.environ.get("COMFYUI_PATH")
    if env:
        return [env]
    parent = os.path.dirname(PACK_ROOT)
    found = []
    if os.path.basename(parent) == "custom_nodes":
        found.append(os.path.dirname(parent))
    found.append(os.path.expanduser("~/ComfyUI"))
    return found


def is_comfyui(path):
    return all(os.path.exists(os.path.join(path, p)) for p in ("main.py", "nodes.py", "comfy", "comfy_api"))


def find_comfyui():
    """The ComfyUI path, or None; with COMFYUI_PATH set, only that path counts."""
    for path in candidates():
        if is_comfyui(path):
            return os.path.abspath(path)
    return None


def find_comfyui_or_exit() -> str:
    """For command-line tools: the ComfyUI path, or exit 2 with how to get one."""
    path = find_comfyui()
    if path is None:
        print(HOW_TO_GET_COMFYUI, file=sys.stderr)
        sys.exit(2)
    return path


def setup_comfyui(cpu: bool = True, flags=()) -> str:
    """For scripts run outside ComfyUI's main.py: put ComfyUI first on sys.path (ahead of this pack,
    whose `nodes` package would shadow ComfyUI's nodes.py) and set its arguments before any comfy
    module reads them (comfy.cli_args would otherwise parse the script's own sys.argv)."""
    root = find_comfyui_or_exit()
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    import comfy.options
    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args
    args.cpu = cpu
    for flag in flags:
        setattr(args, flag, True)
    return root
