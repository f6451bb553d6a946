#!/usr/bin/env bash
# Build .gpu_carry/ for a lent GPU machine (it has PyTorch but no ComfyUI, no diffusers, and no network):
#   .gpu_carry/ComfyUI.tar.gz  ComfyUI's tree without .git, tests and user files, gzipped (31 MB of files for 0.33
#                              travel as about 8 MB; gpu_check.sh unpacks it), from COMFYUI_PATH or ~/ComfyUI: the
#                              newest ComfyUI, whose NVIDIA default is dynamic VRAM
#   .gpu_carry/peer_repo       galhar/reenact-anything's code (argument 1: a checkout of it; never committed here)
#   .gpu_carry/wheels_comfy    what inversion_step.py needs that the GPU image lacks: torchsde, trampoline, and for
#                              ComfyUI 0.33 comfy-kitchen (imported by comfy/ldm/modules/attention.py; its pure-Python
#                              build, 0.2 MB: the CUDA build is 58 MB and only serves quantised formats SVD does not
#                              use) and comfy-aimdo (dynamic VRAM; comfy/model_management.py imports it)
#   .gpu_carry/wheels_server   what a ComfyUI 0.33 server's start-up and the prompts of dynamic_vram_server.py import
#                              beyond that: PyAV (36 MB), SQLAlchemy, alembic, Mako, blake3, simpleeval, pydantic.
#                              No frontend package: the server runs with --front-end-root on an empty folder
#   .gpu_carry/wheels_peer     the peer's pinned diffusers / transformers / accelerate and their needs (Python 3.12)
# All of it is more than one call may carry (64 MiB with the repository's own files), so the check is two calls,
# each carrying its part; the sizes are printed and checked at the end.
# .gpu_carry/ is added to .git/info/exclude, so it never lands in a commit. Usage:
#   bash benchmarks/prepare_gpu_carry.sh /path/to/reenact-anything-checkout
# then the two `run` commands printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:?"give a checkout of galhar/reenact-anything (the search tool's fetch, then git archive HEAD)"}
comfy=${COMFYUI_PATH:-$HOME/ComfyUI}
[ -f "$peer/train_reenact.py" ] || { echo "expected $peer/train_reenact.py, got none" >&2; exit 2; }
[ -f "$comfy/comfy/model_base.py" ] || { echo "expected a ComfyUI checkout at $comfy, got none" >&2; exit 2; }
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu_carry/' "$exclude" 2>/dev/null || echo '/.gpu_carry/' >> "$exclude"
rm -rf .gpu_carry && mkdir -p .gpu_carry/wheels_comfy .gpu_carry/wheels_server .gpu_carry/wheels_peer
copy() {  # copy SRC DST [tar --exclude patterns...]
  local src=$1 dst=$2; shift 2
  mkdir -p "$dst" && tar -C "$src" --exclude=.git --exclude=__pycache__ "${@/#/--exclude=./}" -cf - . | tar -C "$dst" -xf -
}
# The folders ComfyUI expects stay (empty); what a user put there does not.
tar -C "$comfy" --exclude=.git --exclude=__pycache__ --exclude=./tests --exclude=./tests-unit \
  --exclude='./models/*/*' --exclude='./custom_nodes/*' --exclude='./input/*' --exclude='./output/*' \
  --exclude=./user --exclude=./temp -czf .gpu_carry/ComfyUI.tar.gz .
echo "ComfyUI $(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$comfy/comfyui_version.py") packed from $comfy"
copy "$peer" .gpu_carry/peer_repo assets
wheels() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$@"
}
wheels .gpu_carry/wheels_comfy torchsde==0.2.6 trampoline==0.1.2 comfy-aimdo==0.4.13
# --platform any alone: the pure-Python comfy-kitchen, not the 58 MB CUDA build
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform any \
  -d .gpu_carry/wheels_comfy comfy-kitchen==0.2.31
wheels .gpu_carry/wheels_server av==18.1.0 SQLAlchemy==2.1.9 alembic==1.20.1 Mako==1.4.3 blake3==1.0.11 \
  simpleeval==1.0.8 pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2
wheels .gpu_carry/wheels_peer diffusers==0.30.2 transformers==4.44.2 accelerate==0.34.2 tokenizers==0.19.1 \
  huggingface_hub==0.24.7

# What each call sends: the repository's own files plus its carried paths (the device tool's limit: 64 MiB).
mib() { du -cb "$@" 2>/dev/null | tail -n 1 | awk '{printf "%.1f", $1 / 1048576}'; }
repo=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 \
  | awk '{printf "%.1f", $1 / 1048576}')
steps=$(mib .gpu_carry/ComfyUI.tar.gz .gpu_carry/wheels_comfy .gpu_carry/wheels_peer .gpu_carry/peer_repo)
server=$(mib .gpu_carry/ComfyUI.tar.gz .gpu_carry/wheels_comfy .gpu_carry/wheels_server)
echo "repository ${repo} MiB; call 1 carries ${steps} MiB, call 2 ${server} MiB (each plus the repository)"
python3 -c 'import sys; r, *calls = map(float, sys.argv[1:]); sys.exit(any(r + c > 64 for c in calls))' \
  "$repo" "$steps" "$server" || { echo "a call would carry more than 64 MiB" >&2; exit 1; }
cat <<'EOF'
call 1, every inversion-step measurement and the peer (timeout_s 600):
  run carry [".gpu_carry/ComfyUI.tar.gz", ".gpu_carry/wheels_comfy", ".gpu_carry/wheels_peer", ".gpu_carry/peer_repo"]
      command: bash benchmarks/gpu_check.sh $OUT --only steps
call 2, right after (the machine is still warm), the ComfyUI server with dynamic VRAM (timeout_s 420):
  run carry [".gpu_carry/ComfyUI.tar.gz", ".gpu_carry/wheels_comfy", ".gpu_carry/wheels_server"]
      command: DEADLINE_S=360 bash benchmarks/gpu_check.sh $OUT --only server
EOF
