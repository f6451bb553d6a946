#!/usr/bin/env bash
# The full test run: the whole suite on the newest ComfyUI (COMFYUI_PATH, the ComfyUI holding this pack, or
# ~/ComfyUI), then the `floor` tests on the oldest supported one (COMFYUI_FLOOR_PATH, else ~/ComfyUI-0.3.64).
# Extra arguments go to both pytest runs. Both run even when the first fails; the exit code is non-zero if either
# failed. A missing checkout fails the run and says how to get it.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
newest="$(python "$here/scripts/find_comfyui.py")" || exit 2
floor="$(python "$here/scripts/find_comfyui.py" --floor)" || exit 2
cd "$here"
started=$SECONDS
COMFYUI_PATH="$newest" python -m pytest tests -q "$@"; newest_rc=$?
echo "newest ComfyUI ($newest): pytest exit $newest_rc after $(( (SECONDS - started) / 60 )) min"
floor_site="$(python "$here/scripts/find_comfyui.py" --floor-site)"
PYTHONPATH="$floor_site${PYTHONPATH:+:$PYTHONPATH}" COMFYUI_PATH="$floor" python -m pytest tests -q -m floor "$@"
floor_rc=$?
echo "floor ComfyUI ($floor): pytest exit $floor_rc; whole run $(( (SECONDS - started) / 60 )) min"
[ "$newest_rc" = 0 ] && [ "$floor_rc" = 0 ]
