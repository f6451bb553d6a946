"""V3 schema fields that only newer ComfyUIs accept, passed only where the running ComfyUI has them.

The pack supports ComfyUI 0.3.64 and newer. Advanced inputs (an input's `advanced` flag, shown behind the node's
"advanced" toggle) and search aliases (`io.Schema(search_aliases=...)`, extra words the node search matches)
came later; an older io.Schema or Input raises TypeError on an argument it does not know. So each field is
detected from the signature ComfyUI ships, never from its version number, and the nodes spread the result:
`io.Int.Input(..., **advanced(io.Int))`, `io.Schema(..., **search_aliases("reenact", ...))`.
"""
import functools
import inspect

from comfy_api.latest import io


@functools.cache
def accepts(callable_, parameter: str) -> bool:
    """Whether `callable_` (a class or a function) takes a parameter of that name."""
    return parameter in inspect.signature(callable_).parameters


def advanced(kind) -> dict:
    """{"advanced": True} where this ComfyUI's `kind.Input` (io.Int, io.Combo, ...) takes it, else {}."""
    return {"advanced": True} if accepts(kind.Input, "advanced") else {}


def search_aliases(*aliases: str) -> dict:
    """{"search_aliases": [...]} where this ComfyUI's io.Schema takes it, else {}."""
    return {"search_aliases": list(aliases)} if accepts(io.Schema, "search_aliases") else {}
