"""The ComfyUI frontends the browser test runs on: the one the running ComfyUI pins, and the newer ones
scripts/test-frontends.txt names (installed by scripts/install-dev.sh into the tests' environment)."""
import importlib.metadata
import os
import re

from reenact_cli.locate import PACK_ROOT

PINS = os.path.join(PACK_ROOT, "scripts", "test-frontends.txt")


def bundled_version() -> str:
    """The frontend package installed beside the ComfyUI under test (what its requirements pin)."""
    return importlib.metadata.version("comfyui-frontend-package")


def newer_versions() -> list[str]:
    with open(PINS) as f:
        return [m.group(1) for line in f if (m := re.match(r"comfyui-frontend-package==(\S+)", line.strip()))]


def front_end_root(version: str) -> str:
    """The static folder to serve with --front-end-root, or an AssertionError saying how to get it."""
    import sys
    venv = os.path.dirname(os.path.dirname(os.path.abspath(sys.executable)))
    root = os.path.join(venv, f"frontend-{version}", "comfyui_frontend_package", "static")
    assert os.path.isfile(os.path.join(root, "index.html")), (
        f"frontend {version} is not installed at {root}: run bash scripts/install-dev.sh")
    return root
