#!/usr/bin/env bash
# Set up the tests: the tested torch family (scripts/tested-torch.txt, torchaudio included, so the newest ComfyUI
# starts), the main job's requirements (scripts/install.sh), pytest, Debian's chromium and playwright-core for the
# browser test. Unlike install.sh this replaces another installed torch: the tests must run what they were
# measured with. The floor ComfyUI (0.3.64) gets its own frontend and templates packages (see below).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python "$here/scripts/find_comfyui.py" --floor > /dev/null || exit 2
if ! python "$here/scripts/check_torch.py"; then
  echo "installing the tested torch family from scripts/tested-torch.txt"
  python -m pip install --quiet -r "$here/scripts/tested-torch.txt"
fi
bash "$here/scripts/install.sh"
# The floor's own frontend, templates and docs packages: 0.3.64 does not start with the newest's templates package.
# They go into a folder of their own that scripts/run_tests.sh puts first on PYTHONPATH for the floor run only.
floor="$(python "$here/scripts/find_comfyui.py" --floor)"
floor_site="$(python "$here/scripts/find_comfyui.py" --floor-site)"
grep -E '^comfyui-[a-z-]+==' "$floor/requirements.txt" > "$floor_site.requirements.txt"
if ! cmp -s "$floor_site.requirements.txt" "$floor_site/requirements.txt" 2>/dev/null; then
  rm -rf "$floor_site" && mkdir -p "$floor_site"
  python -m pip install --quiet --no-deps --target "$floor_site" -r "$floor_site.requirements.txt"
  cp "$floor_site.requirements.txt" "$floor_site/requirements.txt"
fi
python -m pip install --quiet -c "$here/scripts/tested-torch.txt" pytest
# Browser tests: Debian's chromium (never a browser download) and playwright-core, pinned by package-lock.json.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -q chromium >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
fi
npm ci --prefix "$here/tests/browser" --no-audit --no-fund --loglevel=error
python "$here/scripts/check_torch.py"
echo "test set-up done"
