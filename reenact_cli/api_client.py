"""ComfyUI's HTTP and websocket API, as the browser uses it: upload, queue, follow, history, interrupt."""
import asyncio
import json
import mimetypes
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import aiohttp

from reenact_core.file_writes import place_bytes

FINAL_STATUS = {"execution_success": "success", "execution_error": "error", "execution_interrupted": "interrupted"}


class ApiError(RuntimeError):
    pass


@dataclass
class PromptRun:
    """What the websocket said about one prompt."""
    prompt_id: str
    status: str = "running"  # success | error | interrupted | timeout | stalled | cancelled | server_down
    events: list = field(default_factory=list)

    def of_type(self, event_type: str) -> list[dict]:
        return [data for kind, data in self.events if kind == event_type]

    @property
    def error(self) -> dict | None:
        errors = self.of_type("execution_error")
        return errors[0] if errors else None


class ComfyClient:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.client_id = uuid.uuid4().hex
        self.queued: list[str] = []   # prompt ids this client queued, so that a cancel stops only its own

    def get_json(self, path: str, timeout: float = 60):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as r:
            return json.load(r)

    def post_json(self, path: str, payload: dict | None = None, timeout: float = 60):
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(payload or {}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                body = r.read()
        except urllib.error.HTTPError as e:
            raise ApiError(f"POST {path} failed ({e.code}): {e.read().decode(errors='replace')}") from None
        return json.loads(body) if body else None

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def history(self, prompt_id: str, timeout: float = 60) -> dict:
        """The prompt's history entry. The server files it just after it sends execution_success, so poll."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.get_json(f"/history/{prompt_id}").get(prompt_id, {})
            if "status" in entry or time.monotonic() > deadline:
                return entry
            time.sleep(0.2)

    def interrupt(self) -> None:
        self.post_json("/interrupt")

    def cancel(self, prompt_id: str, timeout: float = 60) -> None:
        """Stop this prompt and no other: out of the queue if it waits, interrupted if it runs (ComfyUI takes a
        prompt id in both since 0.3.64's /interrupt, so someone else's prompt on a shared server is left alone)."""
        self.post_json("/queue", {"delete": [prompt_id]}, timeout=timeout)
        self.post_json("/interrupt", {"prompt_id": prompt_id}, timeout=timeout)

    def in_queue(self, prompt_id: str, timeout: float = 60) -> bool:
        """Whether the prompt still waits or runs on the server."""
        queue = self.get_json("/queue", timeout=timeout)
        return any(item[1] == prompt_id for item in queue.get("queue_running", []) + queue.get("queue_pending", []))

    def upload(self, path: str, subfolder: str = "", overwrite: bool = False, name: str | None = None,
               timeout: float = 120) -> str:
        """Put a local file into the server's input folder (POST /upload/image takes any file) and return its
        name as input widgets expect it; `name` is the file's name there (default: its own)."""
        return asyncio.run(self._upload(path, subfolder, overwrite, name, timeout))

    async def _upload(self, path, subfolder, overwrite, name=None, timeout=120):
        with open(path, "rb") as f:
            data = f.read()
        return await self._upload_bytes(data, name or os.path.basename(path), subfolder, overwrite, timeout)

    async def _upload_bytes(self, data, name, subfolder, overwrite, timeout):
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name,
                       content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
        form.add_field("subfolder", subfolder)
        form.add_field("overwrite", "true" if overwrite else "false")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(f"{self.url}/upload/image", data=form) as r:
                if r.status != 200:
                    raise ApiError(f"POST /upload/image failed ({r.status}): {await r.text()}")
                answer = await r.json()
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def fetch(self, output: dict, timeout: float = 120) -> bytes:
        """The bytes of one output file (an entry of a history's outputs: filename, subfolder, type)."""
        query = urllib.parse.urlencode({k: output[k] for k in ("filename", "subfolder", "type")})
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=timeout) as r:
            return r.read()

    def download(self, output: dict, destination: str, timeout: float = 120) -> str:
        """Save one output file to `destination`, whole or not at all, never over an existing file (a user's):
        FileExistsError then."""
        if not place_bytes(destination, self.fetch(output, timeout)):
            raise FileExistsError(f"expected no file at {destination}, found one; it was left as it was")
        return destination

    def queue(self, prompt: dict, timeout: float = 60) -> str:
        answer = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id}, timeout=timeout)
        self.queued.append(answer["prompt_id"])
        return answer["prompt_id"]

    def upload_bytes(self, data: bytes, name: str, subfolder: str = "", overwrite: bool = False,
                     timeout: float = 120) -> str:
        """upload() of bytes held here (the library's Ray actors get their inputs this way)."""
        return asyncio.run(self._upload_bytes(data, name, subfolder, overwrite, timeout))

    def run(self, prompt: dict, on_event=None, timeout: float | None = None, stall_timeout: float | None = None,
            cancelled=None) -> PromptRun:
        """Queue `prompt` and follow it over the websocket until it ends: the one follower of the main command,
        the demo and the library. `on_event(type, data)` sees each JSON message of this prompt. It also ends as
        "timeout" after `timeout` s, "stalled" after `stall_timeout` s without any word from the server,
        "cancelled" as soon as `cancelled()` is true (the caller then stops the prompt: cancel()), and
        "server_down" when the connection fails or closes."""
        return asyncio.run(self._run(prompt, on_event, timeout, stall_timeout, cancelled or (lambda: False)))

    async def _run(self, prompt, on_event, timeout, stall_timeout, cancelled):
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        run = PromptRun("")
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(ws_url, max_msg_size=0, heartbeat=None) as ws:
                    run.prompt_id = await asyncio.to_thread(self.queue, prompt, stall_timeout or 60)
                    run.status = await self._follow(ws, run, on_event, timeout, stall_timeout, cancelled)
        except (aiohttp.ClientConnectionError, ConnectionError):
            run.status = "server_down"
        return run

    async def _follow(self, ws, run: PromptRun, on_event, timeout, stall_timeout, cancelled) -> str:
        started = last_word = time.monotonic()
        while True:
            if cancelled():
                return "cancelled"
            now = time.monotonic()
            if timeout is not None and now - started > timeout:
                return "timeout"
            if stall_timeout is not None and now - last_word > stall_timeout:
                return "stalled"
            try:  # aiohttp's own timeout: a receive() cancelled from outside (asyncio.wait_for) loses later messages
                message = await ws.receive(timeout=1.0)
            except asyncio.TimeoutError:
                continue
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return "server_down"
            last_word = time.monotonic()  # any message, previews included, says the server is working
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            kind, data = event.get("type"), event.get("data") or {}
            if data.get("prompt_id") not in (None, run.prompt_id):
                continue
            run.events.append((kind, data))
            if on_event is not None:
                on_event(kind, data)
            if kind in FINAL_STATUS:
                return FINAL_STATUS[kind]

