#!/usr/bin/env bash
# Install everything the pack and its tests need into the current Python, on a fresh machine.
# torch + torchvision are pinned to the pair the suite is tested with (ComfyUI imports torchvision), so a new
# machine and CI test the same thing; another installed version is replaced, and the script says so.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
comfy="${COMFYUI_PATH:-}"
if [ -z "$comfy" ]; then
  if [ "$(basename "$(dirname "$here")")" = "custom_nodes" ]; then comfy="$(dirname "$(dirname "$here")")"; else comfy="$HOME/ComfyUI"; fi
fi
if [ ! -f "$comfy/main.py" ] || [ ! -f "$comfy/requirements.txt" ]; then
  echo "ERROR: ComfyUI not found at $comfy." >&2
  echo "Get it with: git clone https://github.com/comfyanonymous/ComfyUI ~/ComfyUI" >&2
  echo "or set COMFYUI_PATH to a checkout, or clone this pack into ComfyUI/custom_nodes/." >&2
  exit 2
fi
if ! python "$here/scripts/check_torch.py"; then
  echo "replacing them with the tested pair from scripts/tested-torch.txt"
  python -m pip install --quiet -r "$here/scripts/tested-torch.txt"
fi
# ComfyUI's own requirements, minus the torch family already handled (torchaudio has no build
# matching the registry's newest torch; ComfyUI only needs it for audio nodes).
grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$comfy/requirements.txt" > /tmp/comfy-requirements.txt
python -m pip install --quiet -r /tmp/comfy-requirements.txt
python -m pip install --quiet -r "$here/requirements.txt" pytest
# Browser tests: Debian's chromium (never a browser download) and playwright-core, pinned by package-lock.json.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -q chromium >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi
npm ci --prefix "$here/tests/browser" --no-audit --no-fund --loglevel=error
echo "installed; ComfyUI at $comfy"
