"""Every websocket message for one client, recorded by a background thread: for a test that watches a whole queue
of prompts at once (the product follows one prompt at a time: ComfyClient.run)."""
import asyncio
import json
import threading
import time

import aiohttp

from reenact_cli.api_client import ApiError, ComfyClient

FINAL_EVENTS = ("execution_success", "execution_error", "execution_interrupted")


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
