"""Exit 0 when the installed torch and torchvision are the tested pair (scripts/tested-torch.txt), else 1.

A local build tag (+cu130, +cpu) is the same release. Prints what is installed and what is expected.
"""
import os
import sys

from torch_family import installed  # this folder: scripts run as files put it on sys.path

PINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tested-torch.txt")


def pinned() -> dict:
    with open(PINS) as f:
        return dict(line.strip().split("==") for line in f if line.strip() and not line.startswith("#"))


def main() -> int:
    have = {name: installed(name) or "none" for name in pinned()}
    wrong = {name: (have[name], version) for name, version in pinned().items()
             if have[name].split("+")[0] != version}
    for name, (found, want) in wrong.items():
        print(f"expected {name}=={want} (the tested version), got {found}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
