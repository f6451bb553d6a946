"""Live events for the browser while Optimize Motion Embedding runs: loss points (web/js/loss_curve.js draws them
on the node) and motion previews (web/js/motion_preview.js shows them on the node)."""
import math
import time

from ..reenact_core.events import LOSS_EVENT, PREVIEW_EVENT

SEND_INTERVAL_S = 0.25


def prompt_server():
    """The running PromptServer, or None when the node runs outside a server (tests, scripts)."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    return getattr(PromptServer, "instance", None)


class LossEvents:
    """Batches (step, loss) points and sends them at most every SEND_INTERVAL_S to the client that queued the
    prompt, so a fast GPU does not flood the websocket."""

    def __init__(self, node_id, total_steps: int):
        self.server = prompt_server() if node_id is not None else None
        self.node_id = str(node_id)
        self.prompt_id = getattr(self.server, "last_prompt_id", None)
        self.total = total_steps
        self.pending: list[list[float]] = []
        self.last_sent = 0.0
        self.send(reset=True)

    def add(self, step: int, loss: float) -> None:
        if self.server is None:
            return
        self.pending.append([step, loss if math.isfinite(loss) else None])
        if step >= self.total or time.monotonic() - self.last_sent >= SEND_INTERVAL_S:
            self.send()

    def held_out(self, step: int, loss: float) -> None:
        """A held-out evaluation: sent at once with what is pending (one every few dozen steps)."""
        self.send(held_out=[[step, loss if math.isfinite(loss) else None]])

    def stopped(self, step: int, reason: str) -> None:
        self.send(stopped={"step": step, "reason": reason})

    def send(self, reset: bool = False, **extra) -> None:
        """`extra`: held_out [[step, loss|null]] and stopped {step, reason}, as web/js/loss_curve.js reads them."""
        if self.server is None:
            return
        self.server.send_sync(LOSS_EVENT, {"node": self.node_id, "prompt_id": self.prompt_id, "total": self.total,
                                           "reset": reset, "points": self.pending, **extra}, self.server.client_id)
        self.pending = []
        self.last_sent = time.monotonic()


def send_preview(node_id, step: int, total: int, saved: dict) -> None:
    """Tell the client that queued the prompt where the preview at `step` is (`saved`: filename, subfolder, type)."""
    server = prompt_server() if node_id is not None else None
    if server is None:
        return
    server.send_sync(PREVIEW_EVENT, {"node": str(node_id), "prompt_id": getattr(server, "last_prompt_id", None),
                                     "step": step, "total": total, "image": dict(saved)}, server.client_id)
