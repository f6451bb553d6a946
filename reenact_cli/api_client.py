"""ComfyUI's HTTP and websocket API, as the browser uses it: upload, queue, follow, history, interrupt."""
import asyncio
import json
import mimetypes
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field

import aiohttp

DONE_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


class ApiError(RuntimeError):
    pass


@dataclass
class PromptRun:
    """What the websocket said about one prompt."""
    prompt_id: str
    status: str = "running"  # success | error | interrupted | timeout
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
        name = name or os.path.basename(path)
        form = aiohttp.FormData()
        with open(path, "rb") as f:
            form.add_field("image", f.read(), filename=name,
                           content_type=mimetypes.guess_type(name)[0] or "application/octet-stream")
        form.add_field("subfolder", subfolder)
        form.add_field("overwrite", "true" if overwrite else "false")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.post(f"{self.url}/upload/image", data=form) as r:
                if r.status != 200:
                    raise ApiError(f"POST /upload/image failed ({r.status}): {await r.text()}")
                answer = await r.json()
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def download(self, output: dict, destination: str, timeout: float = 120) -> str:
        """Save one output file (an entry of a history's outputs: filename, subfolder, type) to `destination`."""
        query = urllib.parse.urlencode({k: output[k] for k in ("filename", "subfolder", "type")})
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=timeout) as r, open(destination, "wb") as f:
            f.write(r.read())
        return destination

    def queue(self, prompt: dict, timeout: float = 60) -> str:
        answer = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id}, timeout=timeout)
        self.queued.append(answer["prompt_id"])
        return answer["prompt_id"]

    def run(self, prompt: dict, on_event=None, timeout: float = 1800) -> PromptRun:
        """Queue `prompt` and follow the websocket until it ends; `on_event(type, data)` sees every JSON message."""
        return asyncio.run(self._run(prompt, on_event, timeout))

    async def _run(self, prompt, on_event, timeout):
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                run = PromptRun(await asyncio.to_thread(self.queue, prompt))
                try:
                    await asyncio.wait_for(self._follow(ws, run, on_event), timeout)
                except asyncio.TimeoutError:
                    run.status = "timeout"
                return run

    async def _follow(self, ws, run: PromptRun, on_event):
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            kind, data = event.get("type"), event.get("data") or {}
            if data.get("prompt_id") not in (None, run.prompt_id):
                continue
            run.events.append((kind, data))
            if on_event is not None:
                on_event(kind, data)
            if kind in DONE_EVENTS:
                run.status = {"execution_success": "success", "execution_error": "error",
                              "execution_interrupted": "interrupted"}[kind]
                return


class EventStream:
    """Every websocket message for one client, recorded by a background thread; for watching a whole queue."""

    def __init__(self, client: ComfyClient):
        self.client = client
        self.events: list[tuple[str, dict]] = []
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    async def _listen(self):
        ws_url = self.client.url.replace("http", "ws", 1) + f"/ws?clientId={self.client.client_id}"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                self.connected.set()
                while not self.stop.is_set():
                    try:
                        message = await ws.receive(timeout=0.5)
                    except asyncio.TimeoutError:
                        continue
                    if message.type == aiohttp.WSMsgType.TEXT:
                        event = json.loads(message.data)
                        self.events.append((event.get("type"), event.get("data") or {}))
                    elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return

    def __enter__(self):
        self.thread.start()
        if not self.connected.wait(30):
            raise ApiError(f"no websocket connection to {self.client.url}")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)

    def of(self, prompt_id: str, kind: str | None = None) -> list[dict]:
        return [d for k, d in list(self.events) if d.get("prompt_id") == prompt_id and kind in (None, k)]

    def wait_for(self, condition, timeout: float = 1800):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        raise ApiError("timed out waiting on the websocket")
