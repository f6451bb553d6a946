#!/usr/bin/env bash
# The test run, with the tests' own Python environment (scripts/install-dev.sh makes it; never your ComfyUI's Python).
#   bash scripts/run_tests.sh            the whole suite on the newest ComfyUI (COMFYUI_PATH, the ComfyUI holding
#                                        this pack, or ~/ComfyUI), then the `floor` tests on the oldest supported one
#                                        (COMFYUI_FLOOR_PATH, else ~/ComfyUI-0.3.64)
#   bash scripts/run_tests.sh --quick    the quick tier (-m "not full") on the newest only, in a random order (its
#                                        seed is printed: pass --random-order-seed=N to repeat it): no floor needed
# Both spread the tests over REENACT_TEST_WORKERS pytest-xdist workers (default 2; 0 runs them in this process),
# whole groups to a worker (tests/conftest.py says which). Other arguments go to pytest in both runs; the floor run
# keeps only `floor` tests whatever they say (REENACT_FLOOR_RUN, read by tests/conftest.py). Both runs go on when the
# first fails; the exit code is non-zero if either failed. A missing checkout or environment fails the run and says
# how to get it. REENACT_TIMINGS_DIR, when set, gets each run's JUnit XML and phase times (.ci/run's summary).
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
workers="${REENACT_TEST_WORKERS:-2}"
parallel=()
[ "$workers" -gt 0 ] && parallel=(-n "$workers" --dist loadgroup)
timings="${REENACT_TIMINGS_DIR:-}"
junit() { [ -n "$timings" ] && echo "--junitxml=$timings/$1.xml"; }
started=$SECONDS
if [ "$quick" = 1 ]; then
  seed_args=()
  if ! printf '%s\n' "${args[@]}" | grep -q -- '--random-order-seed'; then
    seed_args=(--random-order-seed="$RANDOM")
    echo "quick tier in a random order: ${seed_args[0]} (pass it to repeat this order)"
  fi
  COMFYUI_PATH="$newest" "$py" -m pytest tests -q -m "not full" -p random_order --random-order-bucket=global \
    "${seed_args[@]}" "${parallel[@]}" "${args[@]}"
  exit $?
fi
floor="$("$py" "$here/scripts/find_comfyui.py" --floor)" || exit 2
COMFYUI_PATH="$newest" "$py" -m pytest tests -q "${parallel[@]}" $(junit newest) "${args[@]}"; newest_rc=$?
newest_s=$(( SECONDS - started ))
echo "newest ComfyUI ($newest): pytest exit $newest_rc after $(( newest_s / 60 )) min"
floor_site="$("$py" "$here/scripts/find_comfyui.py" --floor-site)"
REENACT_FLOOR_RUN=1 PYTHONPATH="$floor_site${PYTHONPATH:+:$PYTHONPATH}" COMFYUI_PATH="$floor" \
  "$py" -m pytest tests -q "${parallel[@]}" $(junit floor) "${args[@]}"
floor_rc=$?
echo "floor ComfyUI ($floor): pytest exit $floor_rc; whole run $(( (SECONDS - started) / 60 )) min"
[ -n "$timings" ] &&
  printf 'newest %s\nfloor %s\n' "$newest_s" "$(( SECONDS - started - newest_s ))" > "$timings/phases.txt"
[ "$newest_rc" = 0 ] && [ "$floor_rc" = 0 ]
