"""pytest plugin, loaded first by pyproject's addopts (-p reenact_testkit.pytest_plugin): the pack's root is collected
as a plain folder, not a package.

Why: the root holds the pack's __init__.py for ComfyUI. pytest would collect the root as a package and import that
file (as "main", or whatever the clone's folder is called) to look for setup_module, loading a second copy of every
node and core module beside the one ComfyUI loads (tests/test_pack_loading.py checks there is one).
"""
from pathlib import Path

import pytest

PACK_ROOT = Path(__file__).resolve().parents[1]

# Plain asserts in the test kit's helpers report their values as asserts in tests/ do.
pytest.register_assert_rewrite("reenact_testkit")


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path, parent):
    if path.resolve() == PACK_ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
