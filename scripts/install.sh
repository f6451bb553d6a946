#!/usr/bin/env bash
# Set up the main job in the current Python: ComfyUI's requirements and the pack's.
# A torch, torchvision or torchaudio already installed is never replaced (a user's CUDA build is theirs): pip runs
# with those versions as constraints, so it fails with a conflict rather than swapping them. Only a missing member
# of the family is installed, built for the torch that is there. Installs no browser and no node packages
# (the tests' extras are scripts/install-dev.sh's).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
comfy="$(python "$here/scripts/find_comfyui.py")" || exit 2
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
family="torch torchvision torchaudio"
python "$here/scripts/torch_family.py" constraints > "$work/keep-torch.txt"
missing="$(python "$here/scripts/torch_family.py" missing)"
if [ -n "$missing" ]; then
  echo "installing $missing (not installed yet; an installed torch is kept)"
  python -m pip install --quiet -c "$work/keep-torch.txt" $missing
  python "$here/scripts/torch_family.py" constraints > "$work/keep-torch.txt"
fi
# ComfyUI's own requirements and the pack's, minus the torch family handled above.
grep -v -E "^($(echo $family | tr ' ' '|'))([<>=~ ].*)?$" "$comfy/requirements.txt" > "$work/comfy-requirements.txt"
python -m pip install --quiet -c "$work/keep-torch.txt" -r "$work/comfy-requirements.txt" -r "$here/requirements.txt"
echo "installed the pack's and ComfyUI's requirements; ComfyUI at $comfy; $(python "$here/scripts/torch_family.py" describe)"
