#!/usr/bin/env bash
# Build .gpu_carry/ for a lent GPU machine (it has PyTorch but no ComfyUI, no diffusers, and no network):
#   .gpu_carry/ComfyUI       ComfyUI's tree without .git and models (from COMFYUI_PATH or ~/ComfyUI)
#   .gpu_carry/peer_repo     galhar/reenact-anything's code (argument 1: a checkout of it; never committed here)
#   .gpu_carry/wheels_comfy  what inversion_step.py needs that the GPU image lacks (torchsde, trampoline)
#   .gpu_carry/wheels_peer   the peer's pinned diffusers / transformers / accelerate and their needs (Python 3.12)
# .gpu_carry/ is added to .git/info/exclude, so it never lands in a commit. Usage:
#   bash benchmarks/prepare_gpu_carry.sh /path/to/reenact-anything-checkout
# then the `run` command printed at the end (carry: [".gpu_carry"]).
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:?"give a checkout of galhar/reenact-anything (the search tool's fetch, then git archive HEAD)"}
comfy=${COMFYUI_PATH:-$HOME/ComfyUI}
[ -f "$peer/train_reenact.py" ] || { echo "expected $peer/train_reenact.py, got none" >&2; exit 2; }
[ -f "$comfy/comfy/model_base.py" ] || { echo "expected a ComfyUI checkout at $comfy, got none" >&2; exit 2; }
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu_carry/' "$exclude" 2>/dev/null || echo '/.gpu_carry/' >> "$exclude"
rm -rf .gpu_carry && mkdir -p .gpu_carry/wheels_comfy .gpu_carry/wheels_peer
copy() {  # copy SRC DST [tar --exclude patterns...]
  local src=$1 dst=$2; shift 2
  mkdir -p "$dst" && tar -C "$src" --exclude=.git --exclude=__pycache__ "${@/#/--exclude=./}" -cf - . | tar -C "$dst" -xf -
}
copy "$comfy" .gpu_carry/ComfyUI models output input user custom_nodes
mkdir -p .gpu_carry/ComfyUI/models .gpu_carry/ComfyUI/custom_nodes
copy "$peer" .gpu_carry/peer_repo assets
wheels() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform any -d "$@"
}
wheels .gpu_carry/wheels_comfy torchsde==0.2.6 trampoline==0.1.2
wheels .gpu_carry/wheels_peer diffusers==0.30.2 transformers==4.44.2 accelerate==0.34.2 tokenizers==0.19.1 \
  huggingface_hub==0.24.7
du -sh .gpu_carry
cat <<'EOF'
run (carry [".gpu_carry"], timeout_s 600), for example:
  pip() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$@"; };
  pip /tmp/site .gpu_carry/wheels_comfy/*.whl && pip /tmp/peer_site .gpu_carry/wheels_peer/*.whl || exit;
  export PYTHONPATH=/tmp/site COMFYUI_PATH=$PWD/.gpu_carry/ComfyUI PYTHONUNBUFFERED=1;
  python3 benchmarks/peer_side_by_side.py --peer-repo .gpu_carry/peer_repo --peer-site /tmp/peer_site \
    --ours "--dtype fp16 --checkpointing blocks" --ours "--dtype bf16 --checkpointing blocks" | tee $OUT/side_by_side.txt
EOF
