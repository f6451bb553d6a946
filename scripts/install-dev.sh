#!/usr/bin/env bash
# Set up the tests in a Python environment of their own, never in the Python that runs your ComfyUI:
#   a virtual environment at <this clone>/.venv (REENACT_TEST_VENV to put it elsewhere), made with python3 (or
#   $PYTHON), holding the tested torch family (scripts/tested-torch.txt), ComfyUI's requirements, the pack's and
#   pytest (scripts/test-requirements.txt). scripts/run_tests.sh runs the tests with that environment's Python.
# `--quick`: only that, enough for the quick tier (`bash scripts/run_tests.sh --quick`).
# Otherwise also what the full run needs: the floor ComfyUI's own frontend and templates packages (in a folder inside
# the environment, put first on PYTHONPATH for the floor run only), Debian's chromium and playwright-core for the
# browser test. Nothing is written to your home folder but pip's and npm's own download caches.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    *) echo "expected no argument or --quick, got $arg" >&2; exit 2 ;;
  esac
done
base_python="${PYTHON:-python3}"
newest="$("$base_python" "$here/scripts/find_comfyui.py")" || exit 2
[ "$quick" = 1 ] || floor="$("$base_python" "$here/scripts/find_comfyui.py" --floor)" || exit 2
venv="$("$base_python" "$here/scripts/find_comfyui.py" --venv)"
if [ ! -x "$venv/bin/python" ]; then
  echo "making the tests' own Python environment at $venv"
  "$base_python" -m venv "$venv"
fi
py="$venv/bin/python"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
if ! "$py" "$here/scripts/check_torch.py" > /dev/null; then
  echo "installing the tested torch family (scripts/tested-torch.txt) into $venv"
  "$py" -m pip install --quiet -r "$here/scripts/tested-torch.txt"
fi
# ComfyUI's own requirements, minus the torch family pinned above, the pack's, and the test runner.
grep -v -E "^(torch|torchvision|torchaudio)([<>=~ ;].*)?$" "$newest/requirements.txt" > "$work/comfy-requirements.txt"
"$py" -m pip install --quiet -c "$here/scripts/tested-torch.txt" -r "$work/comfy-requirements.txt" \
  -r "$here/requirements.txt" -r "$here/scripts/test-requirements.txt"
if [ "$quick" = 0 ]; then
  # The floor's own frontend, templates and docs packages: 0.3.64 does not start with the newest's templates package.
  floor_site="$("$base_python" "$here/scripts/find_comfyui.py" --floor-site)"
  grep -E '^comfyui-[a-z-]+==' "$floor/requirements.txt" > "$work/floor-requirements.txt"
  if ! cmp -s "$work/floor-requirements.txt" "$floor_site/requirements.txt" 2>/dev/null; then
    rm -rf "$floor_site" && mkdir -p "$floor_site"
    "$py" -m pip install --quiet --no-deps --target "$floor_site" -r "$work/floor-requirements.txt"
    cp "$work/floor-requirements.txt" "$floor_site/requirements.txt"
  fi
  # The newer frontends the browser test also checks, each in a folder of its own (served with --front-end-root).
  while read -r pin; do
    target="$venv/frontend-${pin#*==}"
    [ -f "$target/comfyui_frontend_package/static/index.html" ] ||
      "$py" -m pip install --quiet --no-deps --target "$target" "$pin"
  done < <(grep -E '^comfyui-frontend-package==' "$here/scripts/test-frontends.txt")
  # Browser tests: Debian's chromium (never a browser download) and playwright-core, pinned by package-lock.json.
  if [ ! -x /usr/bin/chromium ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y -q chromium >/dev/null 2>&1 ||
      { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
  fi
  npm ci --prefix "$here/tests/browser" --no-audit --no-fund --loglevel=error
fi
"$py" "$here/scripts/check_torch.py"
echo "test set-up done: $venv ($("$py" "$here/scripts/torch_family.py" describe))"
