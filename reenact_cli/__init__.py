"""Drives a ComfyUI server from outside: start or reuse one, convert bundled workflows, queue and follow prompts.

Used by the main-job command (`python -m reenact_cli.run`) and by the end-to-end tests. Knows nothing of the
method itself; everything it runs goes through ComfyUI's HTTP API, as a user's browser would.
"""
