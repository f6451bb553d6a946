"""What of the torch family is installed, for scripts/install.sh, which must never replace it.

`constraints`: pip constraint lines pinning each installed member to its installed version (build tag kept).
`missing`: the members not installed, or all three when torch itself is missing.
`describe`: one line naming what is installed.
"""
import importlib.metadata
import sys

FAMILY = ("torch", "torchvision", "torchaudio")


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(what: str) -> int:
    versions = {name: installed(name) for name in FAMILY}
    if what == "constraints":
        print("\n".join(f"{name}=={v}" for name, v in versions.items() if v))
    elif what == "missing":
        print(" ".join(name for name, v in versions.items() if v is None))
    elif what == "describe":
        print(", ".join(f"{name} {v or 'not installed'}" for name, v in versions.items()))
    else:
        print(f"expected constraints, missing or describe, got {what!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "describe"))
