"""The server check: a test without the `full` mark that starts a ComfyUI server, or a command that starts one, fails
(tests/conftest.py patches the one place servers start and the launches of those commands)."""
import subprocess
import sys

import pytest

from reenact_cli.comfy_server import ComfyServer
from reenact_cli.locate import PACK_ROOT


def test_a_quick_test_that_starts_a_server_fails(tmp_path):
    import folder_paths
    server = ComfyServer(folder_paths.base_path, str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="test_a_quick_test_that_starts_a_server_fails starts a ComfyUI "
                                                    "server .* but is not marked full"):
        server.start()
    assert server.process is None, "refused before the process was started"


@pytest.mark.parametrize("command", [["-m", "reenact_cli.run", "--help"], ["-m", "reenact_cli.library", "--help"]])
def test_a_quick_test_that_runs_a_server_command_fails(command):
    with pytest.raises(pytest.fail.Exception, match="starts a command that starts servers"):
        subprocess.run([sys.executable, *command], cwd=PACK_ROOT, capture_output=True, timeout=60)


def test_other_commands_still_run():
    done = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok"
