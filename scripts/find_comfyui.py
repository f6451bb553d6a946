"""Print the ComfyUI checkout the set-up and the tests use, or exit 2 saying how to get one.

Default: the newest ComfyUI, found as the pack's tools find it (COMFYUI_PATH, the ComfyUI holding this pack,
~/ComfyUI). `--floor`: the oldest ComfyUI the pack supports, 0.3.64, which the test run checks too
(COMFYUI_FLOOR_PATH, else ~/ComfyUI-0.3.64). `--venv`: the tests' own Python environment (REENACT_TEST_VENV, else .venv in
this clone). `--floor-site`: the folder inside it holding the floor's own frontend and templates packages (the
newest's do not fit it), put first on PYTHONPATH for the floor's test run.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reenact_cli.locate import HOW_TO_GET_COMFYUI, PACK_ROOT, find_comfyui, is_comfyui  # noqa: E402

FLOOR_VERSION = "0.3.64"
HOW_TO_GET_FLOOR = (
    f"The floor ComfyUI ({FLOOR_VERSION}) was not found at {{path}}. The test run checks the pack on it too:\n"
    f"  git clone --branch v{FLOOR_VERSION} --depth 1 https://github.com/comfyanonymous/ComfyUI ~/ComfyUI-{FLOOR_VERSION}\n"
    "or point COMFYUI_FLOOR_PATH at a checkout of that version.")


def floor_path() -> str:
    return os.path.abspath(os.environ.get("COMFYUI_FLOOR_PATH") or os.path.expanduser(f"~/ComfyUI-{FLOOR_VERSION}"))


def checkout_version(path: str) -> str:
    with open(os.path.join(path, "comfyui_version.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("\"'")
    return "unknown"


def test_venv() -> str:
    """The tests' own virtual environment, made by scripts/install-dev.sh; never the Python that runs ComfyUI."""
    return os.path.abspath(os.environ.get("REENACT_TEST_VENV") or os.path.join(PACK_ROOT, ".venv"))


def floor_site() -> str:
    """Where scripts/install-dev.sh puts the floor's own frontend and templates packages: inside the tests' venv."""
    return os.path.join(test_venv(), f"floor-site-{FLOOR_VERSION}")


def main(argv) -> int:
    if "--venv" in argv:
        path = test_venv()
    elif "--floor-site" in argv:
        path = floor_site()
    elif "--floor" in argv:
        path = floor_path()
        if not is_comfyui(path):
            print(HOW_TO_GET_FLOOR.format(path=path), file=sys.stderr)
            return 2
        if (version := checkout_version(path)) != FLOOR_VERSION:
            print(f"expected ComfyUI {FLOOR_VERSION} at {path} (the floor), got {version}", file=sys.stderr)
            return 2
    else:
        path = find_comfyui()
        if path is None:
            print(HOW_TO_GET_COMFYUI, file=sys.stderr)
            return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
