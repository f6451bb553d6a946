"""Exit 0 when the installed torch and torchvision are the tested pair (scripts/tested-torch.txt), else 1.

A local build tag (+cu130, +cpu) is the same release. Prints what is installed and what is expected.
"""
import importlib.metadata
import os
import sys

PINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tested-torch.txt")


def pinned() -> dict:
    with open(PINS) as f:
        return dict(line.strip().split("==") for line in f if line.strip() and not line.startswith("#"))


def installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def main() -> int:
    wrong = {name: (installed(name), version) for name, version in pinned().items()
             if installed(name).split("+")[0] != version}
    for name, (have, want) in wrong.items():
        print(f"expected {name}=={want} (the tested version), got {have}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
