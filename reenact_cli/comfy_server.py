"""Start a ComfyUI server on loopback, or find one that is already running."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


class ServerError(RuntimeError):
    pass


def log_tail(path: str, chars: int = 3000) -> str:
    """The end of a server's log (printed on failure: a started server's folder is about to go); "" if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - chars))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def responds(url: str, timeout: float = 2.0) -> bool:
    """True when `url` answers like a ComfyUI server (its /system_stats returns JSON)."""
    try:
        with urllib.request.urlopen(f"{url}/system_stats", timeout=timeout) as r:
            return "system" in json.load(r)
    except (OSError, ValueError):
        return False


def _parent_death_signal():
    """In the child, before exec: ask Linux for SIGTERM when the parent ends (a killed Ray actor's server)."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux: the server outlives a killed parent, as before
        pass


class ComfyServer:
    """A `main.py` child process on 127.0.0.1 with its own folders; stopped by `stop()` or on `with` exit."""

    def __init__(self, comfyui_path: str, base_directory: str | None, port: int | None = None, cpu: bool = True,
                 extra_args: tuple = (), log_path: str | None = None, die_with_parent: bool = False):
        self.comfyui_path = comfyui_path
        self.die_with_parent = die_with_parent  # Linux: the server gets SIGTERM when the thread that started it ends
        self.base_directory = base_directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(self.port),
                     "--disable-auto-launch", *(self.private_folders(base_directory) if base_directory else []),
                     *(["--cpu"] if cpu else []), *extra_args]
        self.log_path = log_path or os.path.join(base_directory or comfyui_path, "comfyui.log")
        self.process: subprocess.Popen | None = None

    @staticmethod
    def private_folders(base_directory: str) -> list[str]:
        """A base directory holds everything the server writes: ComfyUI keeps its database in its own checkout's
        user/ unless told otherwise, which would be shared by every server started from that checkout."""
        database = os.path.join(os.path.abspath(base_directory), "user", "comfyui.db")
        return ["--base-directory", base_directory, "--database-url", f"sqlite:///{database}"]

    def start(self, timeout: float = 300) -> "ComfyServer":
        """Start the server and wait until it answers; a server already started is returned as it is (so
        `with server.start():` does not start a second one)."""
        if self.process is not None and self.process.poll() is None:
            return self
        if self.base_directory:  # ComfyUI's startup lists custom_nodes and fails when it is absent
            for folder in ("custom_nodes", "user"):
                os.makedirs(os.path.join(self.base_directory, folder), exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, cwd=self.comfyui_path, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=_parent_death_signal if self.die_with_parent else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"ComfyUI exited with code {self.process.returncode} while starting; "
                                  f"see {self.log_path}:\n{self.log_tail()}")
            if responds(self.url, timeout=1.0):
                return self
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"ComfyUI did not answer on {self.url} within {timeout:.0f} s; see {self.log_path}")

    def log_tail(self, chars: int = 4000) -> str:
        return log_tail(self.log_path, chars)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and responds(self.url)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
