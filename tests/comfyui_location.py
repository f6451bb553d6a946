"""The tests find ComfyUI where the pack's tools do (reenact_cli/locate.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reenact_cli.locate import HOW_TO_GET_COMFYUI, PACK_ROOT, find_comfyui  # noqa: E402,F401
