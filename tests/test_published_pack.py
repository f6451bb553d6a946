"""The pack as the Comfy Registry would publish it, installed alone into a fresh ComfyUI.

`comfy node pack` / `comfy node publish` (comfy-cli) zip the files `git ls-files` lists, minus every path a
pattern of .comfyignore matches; the patterns are gitignore patterns (comfy-cli hands the stripped, non-comment
lines to pathspec's "gitwildmatch"), and the last pattern that matches a path decides. The published set is computed
the same way here (tracked plus untracked-not-ignored files, which is `git ls-files` in a clean clone), the matcher is
checked against git's own, and ComfyUI is started from a copy of exactly those files.
"""
import ast
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest

from reenact_cli.api_client import ComfyClient
from reenact_cli.comfy_server import ComfyServer
from reenact_cli.locate import PACK_ROOT
from reenact_testkit.comfy_pack import PACK_NODES, comfyui_root

pytestmark = [pytest.mark.full, pytest.mark.floor]

# A clone's default folder name, not [project].name: a second web registration under the project name would show.
INSTALLED_AS = "ComfyUI-Reenact-Anything"
# ComfyUI's /workflow_templates looks in these folders of each custom node (app/custom_node_manager.py).
WORKFLOW_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")
WORKFLOW_PREFIXES = tuple(f + "/" for f in WORKFLOW_FOLDERS)
NEVER_PUBLISHED = ("tests/", "benchmarks/", "reenact_testkit/", "reenact_toy/", "scripts/", ".ci/", "docs/")
# Imports from a published file of a module that is not published: only --demo of the main command and --toy of
# the library, which need a git clone (the toy model and its weights are not published) and say so before any
# work (tests/test_main_command.py); the nodes never reach them.
CLONE_ONLY_IMPORTS = {("reenact_cli/run.py", "reenact_cli.demo"),
                      ("reenact_cli/library/__main__.py", "reenact_cli.demo"),
                      ("reenact_cli/library/__main__.py", "reenact_toy"),
                      ("reenact_cli/library/__main__.py", "reenact_toy.toy_demo"),
                      ("reenact_cli/library/graphs.py", "reenact_cli.demo"),
                      ("reenact_cli/library/servers.py", "reenact_toy"),
                      ("reenact_cli/library/servers.py", "reenact_cli.demo")}


# --- gitignore ("gitwildmatch") patterns, as comfy-cli applies .comfyignore ---

def _glob_segment(segment: str) -> str:
    """One path segment of a pattern as a regex: * and ? stay within the segment, [..] is a class, \\ escapes."""
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[" and segment.find("]", i + 2) > 0:  # a class: [abc], [a-z], [!abc]
            end = segment.find("]", i + 2)
            body = segment[i + 1:end]
            out.append("[" + ("^" + body[1:] if body[0] in "!^" else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_pattern(line: str) -> tuple[re.Pattern, bool]:
    """(regex over a file's relative path, True when a match excludes / False for a "!" re-include).

    A slash at the start or in the middle anchors the pattern at the root, otherwise it matches at any depth; a
    trailing slash matches directories only, so a file matches when it lies below one; a pattern that names a
    directory takes everything below it; "**" spans any number of folders."""
    excludes = not line.startswith("!")
    body = line if excludes else line[1:]
    directory_only = body.endswith("/")
    body = body.rstrip("/")
    anchored = "/" in body
    parts = body.lstrip("/").split("/")
    regex = "" if anchored else "(?:.*/)?"
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:.*/)?"
        else:
            regex += _glob_segment(part) + ("" if last else "/")
    regex += "/.*" if directory_only else "(?:/.*)?"
    return re.compile(regex + r"\Z", re.DOTALL), excludes


def read_patterns(text: str) -> list[str]:
    """comfy-cli's reading: stripped lines, without blank ones and those starting with #."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    verdict = False
    for regex, excludes in map(compile_pattern, patterns):
        if regex.match(path):
            verdict = excludes
    return verdict


def git_ignored(paths: list[str], patterns: list[str], workdir) -> set[str]:
    """git's own gitignore matching of `paths` (which need not exist) against `patterns` alone."""
    repo = os.path.join(workdir, "git_matcher")
    subprocess.run(["git", "init", "-q", repo], check=True)
    with open(os.path.join(repo, ".git", "info", "exclude"), "w") as f:
        f.write("\n".join(patterns) + "\n")
    run = subprocess.run(["git", "-C", repo, "check-ignore", "--no-index", "--stdin"], input="\n".join(paths),
                         capture_output=True, text=True, check=False)
    assert run.returncode in (0, 1), run.stderr  # 1: nothing matched
    return set(run.stdout.splitlines())


# --- the published set ---

def repository_files() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", PACK_ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("the published file list comes from git ls-files: run the tests in a git clone")
    # comfy-cli skips listed files that are gone from the work tree (a deletion not yet committed)
    return sorted(p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(PACK_ROOT, p)))


def comfyignore_patterns() -> list[str]:
    with open(os.path.join(PACK_ROOT, ".comfyignore")) as f:
        return read_patterns(f.read())


@pytest.fixture(scope="module")
def published() -> list[str]:
    from comfy_config import config_parser
    config = config_parser.extract_node_configuration(PACK_ROOT)
    assert config.tool_comfy.includes == [], "[tool.comfy].includes force-adds files; this test does not model it"
    patterns = comfyignore_patterns()
    return [p for p in repository_files() if not ignored(p, patterns)]


# --- matcher unit cases ---

@pytest.mark.parametrize("pattern, path, expected", [
    ("/docs/", "docs/images/icon.png", True),
    ("/docs/", "web/docs/LoadMotionReference.md", False),
    ("docs/", "web/docs/LoadMotionReference.md", True),  # unanchored: any folder named docs, at any depth
    ("/tests/", "tests/browser/package.json", True),
    ("/tests/", "nodes/tests.py", False),  # trailing slash: directories only
    ("*.safetensors", "reenact_toy/toy_svd.safetensors", True),
    ("*.safetensors", "nodes/safetensors_reader.py", False),
    ("/reenact_cli/demo.py", "reenact_cli/demo.py", True),
    ("/reenact_cli/demo.py", "reenact_cli/run.py", False),
    ("a/**/b.py", "a/x/y/b.py", True),
    ("a/**/b.py", "a/b.py", True),
    ("web", "web/js/loss_curve.js", True),  # a name without a slash takes a directory of that name, and all below
])
def test_pattern_matching_follows_gitignore(pattern, path, expected, tmp_path):
    assert ignored(path, [pattern]) is expected
    assert (path in git_ignored([path], [pattern], tmp_path)) is expected, "git itself disagrees"


def test_last_matching_pattern_decides():
    assert not ignored("nodes/optimize.py", ["/nodes/", "!/nodes/optimize.py"])
    assert ignored("nodes/optimize.py", ["!/nodes/optimize.py", "/nodes/"])


def test_comfyignore_agrees_with_gits_matching_on_every_file(tmp_path):
    patterns = comfyignore_patterns()
    assert not [p for p in patterns if p.startswith("!")], \
        "no re-includes: git cannot re-include below an excluded folder, comfy-cli's matcher can"
    files = repository_files()
    assert {p for p in files if ignored(p, patterns)} == git_ignored(files, patterns, tmp_path)


# --- what is published ---

def test_published_set_is_the_runtime_pack_only(published):
    everything = repository_files()
    for must in ("__init__.py", "LICENSE", "README.md", "pyproject.toml", "requirements.txt",
                 "web/js/loss_curve.js", "nodes/__init__.py", "reenact_core/__init__.py", "reenact_cli/run.py"):
        assert must in published, f"{must} is left out of the published pack"
    runtime = [p for p in everything if p.startswith(("nodes/", "reenact_core/", "web/", *WORKFLOW_PREFIXES))]
    assert [p for p in runtime if p not in published] == [], ".comfyignore drops files the pack needs"
    assert any(p.startswith(WORKFLOW_PREFIXES) for p in published), "no bundled workflows"
    assert [p for p in published if p.startswith(NEVER_PUBLISHED)] == []
    assert [p for p in published if p.endswith((".safetensors", ".ckpt", ".pt", ".pth"))] == [], "model weights"
    assert "reenact_cli/demo.py" not in published


def _module_file(module: str, files: set[str]) -> str | None:
    base = module.replace(".", "/")
    return next((c for c in (base + ".py", base + "/__init__.py") if c in files), None)


def test_published_python_imports_only_published_modules(published):
    """Anywhere in a file, lazy imports too: the server test below only runs what loading the pack runs."""
    everything, shipped = set(repository_files()), set(published)
    local_roots = {p.split("/")[0] for p in everything if p.count("/") == 1 and p.endswith("/__init__.py")}
    comfyui = comfyui_root()  # `nodes` alone means ComfyUI's nodes.py
    local_roots = {r for r in local_roots if not os.path.exists(os.path.join(comfyui, r)) and
                   not os.path.exists(os.path.join(comfyui, r + ".py"))}
    missing = set()
    for path in (p for p in published if p.endswith(".py")):
        with open(os.path.join(PACK_ROOT, path), "rb") as f:
            tree = ast.parse(f.read(), path)
        package = path.split("/")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names if a.name.split(".")[0] in local_roots]
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
                modules = [prefix] if prefix else []
                modules += [f"{prefix}.{a.name}".lstrip(".") for a in node.names]  # submodules, if they are files
            elif isinstance(node, ast.ImportFrom) and node.module.split(".")[0] in local_roots:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for module in modules:
                target = _module_file(module, everything)
                if target and target not in shipped:
                    missing.add((path, module))
    assert missing - CLONE_ONLY_IMPORTS == set(), "published code imports unpublished modules"


# --- a real ComfyUI with only the published files ---

@pytest.fixture(scope="module")
def published_server(published, tmp_path_factory):
    base = tmp_path_factory.mktemp("published_base")
    folder = base / "custom_nodes" / INSTALLED_AS
    for rel in published:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(PACK_ROOT, rel), folder / rel)
    server = ComfyServer(comfyui_root(), str(base)).start()
    try:
        yield server, ComfyClient(server.url)
    finally:
        server.stop()


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.read().decode(errors="replace")


def test_published_pack_registers_the_six_nodes(published_server):
    _, client = published_server
    info = client.object_info()
    assert PACK_NODES <= set(info)
    assert {info[n]["python_module"] for n in PACK_NODES} == {f"custom_nodes.{INSTALLED_AS}"}


def test_published_pack_imports_without_errors(published_server):
    server, _ = published_server
    with open(server.log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert re.search(rf"seconds: .*custom_nodes[/\\]{re.escape(INSTALLED_AS)}$", log, re.MULTILINE), log[-4000:]
    failures = [line for line in log.splitlines() if INSTALLED_AS in line and
                ("IMPORT FAILED" in line or "Cannot import" in line)]
    assert failures == []
    assert "Unable to parse pyproject.toml" not in log  # ComfyUI's own reading of [tool.comfy]


def test_published_pack_serves_its_web_extension_once(published_server, published):
    server, client = published_server
    prefix = f"/extensions/{urllib.parse.quote(INSTALLED_AS)}"
    scripts = [e for e in client.get_json("/extensions") if e.endswith("/loss_curve.js")]
    assert scripts == [f"{prefix}/js/loss_curve.js"], "registered once, or the frontend refuses the second copy"
    status, body = fetch(server.url + scripts[0])
    assert status == 200 and '"ReenactAnything.LossCurve"' in body
    docs = [p for p in published if p.startswith("web/docs/")]
    assert docs, "the node docs ship in web/docs/"
    for doc in docs:
        assert fetch(f"{server.url}{prefix}/{doc[len('web/'):]}")[0] == 200


def test_published_workflows_are_listed_as_templates(published_server, published):
    _, client = published_server
    expected = sorted(os.path.splitext(p.split("/")[1])[0] for p in published
                      if p.count("/") == 1 and p.split("/")[0] in WORKFLOW_FOLDERS and p.endswith(".json"))
    assert expected
    assert sorted(client.get_json("/workflow_templates").get(INSTALLED_AS, [])) == expected


# --- shipped text names only shipped files ---

REPOSITORY_PATH = re.compile(r"(?<![\w./-])((?:\.ci|benchmarks|docs|example_workflows|nodes|reenact_cli|reenact_core|"
                             r"reenact_testkit|reenact_toy|scripts|tests|web)/[\w./<>-]*[\w>])")


def message_strings(path: str) -> list[str]:
    """A Python file's string constants that are not docstrings: tooltips, descriptions and messages."""
    import ast
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_shipped_text_names_only_files_the_package_ships(published):
    """A tooltip, a help page or a message of the Registry package that names a file of this repository names one
    the package has (a link to the repository is how to point at the rest)."""
    shipped = set(published)
    texts = []
    for path in published:
        full = os.path.join(PACK_ROOT, path)
        if path.endswith(".py"):
            texts += [(path, s) for s in message_strings(full)]
        elif path.startswith("web/docs/") and path.endswith(".md"):
            with open(full, encoding="utf-8") as f:
                texts.append((path, f.read()))
    assert any("Optimize" in text for _, text in texts), "the scan reads the tooltips"
    named = {(where, found) for where, text in texts
             for found in REPOSITORY_PATH.findall(re.sub(r"https?://\S+", "", text))}
    missing = sorted((where, found) for where, found in named
                     if not any(p == found or p.startswith(found.rstrip("/") + "/") for p in shipped)
                     and "<" not in found)
    assert not missing, f"shipped text names files the package leaves out: {missing}"
