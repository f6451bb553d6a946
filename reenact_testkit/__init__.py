"""The tests' kit: ComfyUI graphs, servers, media and small models built for the tests and benchmarks.

PYTEST_DONT_REWRITE: this file has no asserts, and it is imported before pytest marks the kit for assert
rewriting (reenact_testkit/pytest_plugin.py); its modules are rewritten.
"""
