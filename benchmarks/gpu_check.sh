#!/usr/bin/env bash
# Every GPU measurement of the performance issue, in one run of under 8 minutes, on a GPU machine that has
# PyTorch but no ComfyUI: ours in each mode, the peer in the same call, 25 frames, low_vram, and the profile; and a
# real ComfyUI server with its default (dynamic VRAM) model loading running the pack (dynamic_vram_server.py).
#
#   bash benchmarks/gpu_check.sh OUT_DIR [--tiny] [--only steps|server]
#     (GPU machine, with .gpu_carry from prepare_gpu_carry.sh: two calls, --only steps then --only server, since
#      what both need is more than one call may carry; --tiny: the same code path on a CPU at a tiny size)
#
# With .gpu_carry/ present, under Python 3.12, it unpacks the carried ComfyUI (ComfyUI.tar.gz) to /tmp/carried_comfyui and installs the
# carried wheels (wheels_comfy, wheels_server) into /tmp/site; the peer runs from .gpu_carry/peer_repo with
# .gpu_carry/wheels_peer (peft hidden in its process, see peer_step.py).
# Elsewhere COMFYUI_PATH, PEER_REPO and PEER_SITE say where they are (no peer run without them; PEER_SITE needs
# the peer's pins plus imageio, which the GPU image has). --tiny uses PyTorch attention, ComfyUI's NVIDIA default.
# OUT_DIR gets one log per run and results.jsonl (each run's last line, its JSON), then summary.md.
# Runs are ordered by what matters most; each gets what is left of the deadline (DEADLINE_S, default 450),
# and a run that would start with less than a minute left is skipped and listed as skipped. The server run comes
# last in a run of both; on the GPU it has its own call.
set -uo pipefail
usage="usage: gpu_check.sh OUT_DIR [--tiny] [--only steps|server]"
out=${1:?$usage}; shift
tiny=; only=all
while [ $# -gt 0 ]; do
  case $1 in
    --tiny) tiny=--tiny ;;
    --only) only=${2:-}; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
case $only in all|steps|server) ;; *) echo "$usage" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
carry="$root/.gpu_carry"
mkdir -p "$out"
: > "$out/results.jsonl"
start=$(date +%s)
deadline=$((start + ${DEADLINE_S:-450}))
export PYTHONUNBUFFERED=1

# The carried wheels are built for the GPU image's Python 3.12; elsewhere (a --tiny run here) the local packages serve.
if [ -f "$carry/ComfyUI.tar.gz" ] && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
  install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$@"; }
  rm -rf /tmp/carried_comfyui && mkdir -p /tmp/carried_comfyui \
    && tar -xzf "$carry/ComfyUI.tar.gz" -C /tmp/carried_comfyui || exit 1
  install /tmp/site $(ls "$carry"/wheels_comfy/*.whl "$carry"/wheels_server/*.whl 2>/dev/null) || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} COMFYUI_PATH=/tmp/carried_comfyui
  if [ -d "$carry/wheels_peer" ]; then
    install /tmp/peer_site "$carry"/wheels_peer/*.whl || exit 1
    PEER_REPO=${PEER_REPO:-$carry/peer_repo} PEER_SITE=${PEER_SITE:-/tmp/peer_site}
  fi
fi
PEER_REPO=${PEER_REPO:-} PEER_SITE=${PEER_SITE:-}
# Inductor's on-disk cache lets a later process reuse graphs an earlier one compiled (same shapes).
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/reenact_inductor_cache}

if [ "$tiny" = "--tiny" ]; then
  device=cpu; model=(--model small --attention pytorch); peer_model=(--tiny --mixed-precision no)
  size14=(--frames 2 --height 64 --width 64 --tokens 2 --steps 1 --warmup 1)
  size25=(--frames 3 --height 64 --width 64 --tokens 2 --steps 1 --warmup 1)
  count14=(--model small --frames 2 --height 64 --width 64 --tokens 2)
  count25=(--model small --frames 3 --height 64 --width 64 --tokens 2)
  dtype=(--dtype fp32 --precision bf16); profile=1
else
  device=cuda; model=(--model full); peer_model=(--mixed-precision fp16)
  size14=(--frames 14 --height 576 --width 1024 --tokens 5 --steps 6 --warmup 2)
  size25=(--frames 25 --height 576 --width 1024 --tokens 5 --steps 4 --warmup 2)
  count14=(--frames 14 --height 576 --width 1024 --tokens 5)
  count25=(--frames 25 --height 576 --width 1024 --tokens 5)
  dtype=(--dtype bf16); profile=3
fi

left() { echo $((deadline - $(date +%s))); }
record() {  # record NAME LOGFILE: append the log's last line to results.jsonl when it is JSON
  local last
  last=$(tail -n 1 "$2")
  if python3 -c 'import json,sys; json.loads(sys.argv[1])' "$last" 2>/dev/null; then
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps({"run": sys.argv[2], **d}))' \
      "$last" "$1" >> "$out/results.jsonl"
  else
    echo "{\"run\": \"$1\", \"failed\": true}" >> "$out/results.jsonl"
    echo "== $1 failed; the end of its log:" >&2; tail -n 15 "$2" >&2
  fi
}
run() {  # run NAME COMMAND...: under what is left of the deadline
  local name=$1; shift
  local budget
  budget=$(left)
  if [ "$budget" -lt 60 ]; then
    echo "{\"run\": \"$name\", \"skipped\": \"deadline\"}" >> "$out/results.jsonl"; echo "== $name skipped"; return
  fi
  echo "== $name ($budget s left)"
  timeout "$budget" "$@" > "$out/$name.log" 2>&1
  record "$name" "$out/$name.log"
}
ours() { local name=$1; shift; run "$name" python3 "$here/inversion_step.py" --device "$device" "${model[@]}" "$@"; }

steps() {  # every inversion-step measurement and the peer
  # The FLOP counts run on the CPU (meta device) beside the GPU runs; the no-recompute count is the yardstick.
  python3 "$here/count_step.py" "${count14[@]}" --dtype bf16 --checkpointing off blocks layers \
    > "$out/count14.log" 2>&1 &
  count_pid=$!
  python3 "$here/count_step.py" "${count25[@]}" --dtype bf16 --checkpointing off blocks > "$out/count25.log" 2>&1 &
  count25_pid=$!

  if [ -n "$PEER_REPO" ] && [ -n "$PEER_SITE" ]; then
    run peer env PYTHONPATH="$PEER_SITE${PYTHONPATH:+:$PYTHONPATH}" python3 "$here/peer_step.py" \
      --peer-repo "$PEER_REPO" --device "$device" "${size14[@]}" "${peer_model[@]}"
  else
    echo '{"run": "peer", "skipped": "no PEER_REPO / PEER_SITE"}' >> "$out/results.jsonl"
  fi
  wait "$count_pid"; record count14 "$out/count14.log"
  useful=$(python3 -c 'import json,sys; rows=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["rows"]
print(next(r["tflop_per_step"] for r in rows if r["checkpointing"] == "off"))' "$out/count14.log" 2>/dev/null || echo 0)
  useful_flag=(); [ "$useful" != "0" ] && useful_flag=(--useful-tflop "$useful")

  ours blocks_eager "${size14[@]}" "${dtype[@]}" --checkpointing blocks "${useful_flag[@]}"
  ours blocks_compiled "${size14[@]}" "${dtype[@]}" --checkpointing blocks --compile --profile "$profile" "${useful_flag[@]}"
  ours budget_compiled "${size14[@]}" "${dtype[@]}" --checkpointing budget --compile "${useful_flag[@]}"
  ours low_vram "${size14[@]}" "${dtype[@]}" --memory-mode low_vram "${useful_flag[@]}"
  wait "$count25_pid"; record count25 "$out/count25.log"
  ours frames25_compiled "${size25[@]}" "${dtype[@]}" --checkpointing blocks --compile
  ours blocks_eager_profile "${size14[@]}" "${dtype[@]}" --checkpointing blocks --steps 1 --warmup 0 --profile "$profile"
  ours low_vram_compiled "${size14[@]}" "${dtype[@]}" --memory-mode low_vram --compile
  ours frames25_budget "${size25[@]}" "${dtype[@]}" --checkpointing budget --compile
}

server() {  # the pack on a real ComfyUI server, default model loading (dynamic VRAM on NVIDIA with ComfyUI 0.33+)
  # each prompt may take a third of what is left after the checkpoint write (~2 min), so the JSON comes out in time
  local each=$(( ($(left) - 150) / 3 )); [ "$each" -lt 60 ] && each=60
  run dynamic_vram python3 "$here/dynamic_vram_server.py" ${tiny:+--tiny} --prompt-timeout "$each" \
    --base-directory /tmp/reenact_dynamic_vram_base
}

[ "$only" = server ] || steps
[ "$only" = steps ] || server

python3 "$here/gpu_check_summary.py" "$out/results.jsonl" | tee "$out/summary.md"
echo "gpu_check: $(( $(date +%s) - start )) s in all"
