#!/usr/bin/env bash
# The test run, with the tests' own Python environment (scripts/install-dev.sh makes it; never your ComfyUI's Python).
#   bash scripts/run_tests.sh            the whole suite on the newest ComfyUI (COMFYUI_PATH, the ComfyUI holding
#                                        this pack, or ~/ComfyUI), then the `floor` tests on the oldest supported one
#                                        (COMFYUI_FLOOR_PATH, else ~/ComfyUI-0.3.64)
#   bash scripts/run_tests.sh --quick    the quick tier (-m "not full") on the newest only: no floor checkout needed
# Other arguments go to pytest in both runs; the floor run keeps only `floor` tests whatever they say
# (REENACT_FLOOR_RUN, read by tests/conftest.py). Both runs go on when the first fails; the exit code is non-zero if
# either failed. A missing checkout or environment fails the run and says how to get it.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
base_python="${PYTHON:-python3}"
quick=0
args=()
for arg in "$@"; do
  if [ "$arg" = --quick ]; then quick=1; else args+=("$arg"); fi
done
venv="$("$base_python" "$here/scripts/find_comfyui.py" --venv)"
py="$venv/bin/python"
if [ ! -x "$py" ]; then
  echo "the tests' Python environment $venv is missing: run bash scripts/install-dev.sh first" >&2
  exit 2
fi
newest="$("$py" "$here/scripts/find_comfyui.py")" || exit 2
cd "$here"
started=$SECONDS
if [ "$quick" = 1 ]; then
  COMFYUI_PATH="$newest" "$py" -m pytest tests -q -m "not full" "${args[@]}"
  exit $?
fi
floor="$("$py" "$here/scripts/find_comfyui.py" --floor)" || exit 2
COMFYUI_PATH="$newest" "$py" -m pytest tests -q "${args[@]}"; newest_rc=$?
echo "newest ComfyUI ($newest): pytest exit $newest_rc after $(( (SECONDS - started) / 60 )) min"
floor_site="$("$py" "$here/scripts/find_comfyui.py" --floor-site)"
REENACT_FLOOR_RUN=1 PYTHONPATH="$floor_site${PYTHONPATH:+:$PYTHONPATH}" COMFYUI_PATH="$floor" \
  "$py" -m pytest tests -q "${args[@]}"
floor_rc=$?
echo "floor ComfyUI ($floor): pytest exit $floor_rc; whole run $(( (SECONDS - started) / 60 )) min"
[ "$newest_rc" = 0 ] && [ "$floor_rc" = 0 ]
