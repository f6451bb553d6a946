"""Terminal progress for a queued prompt: one tqdm bar per node that reports steps, the live loss beside it, a line
for each held-out evaluation and for an early stop, and a line for each motion preview (where it was saved)."""
import sys

from tqdm import tqdm

from reenact_core.events import LOSS_EVENT, PREVIEW_EVENT


class ProgressDisplay:
    def __init__(self, prompt: dict, stream=sys.stderr, on_preview=None):
        """`on_preview(event data)` keeps a preview and returns where it is, for the line printed."""
        self.on_preview = on_preview
        self.titles = {k: v.get("_meta", {}).get("title") or v["class_type"] for k, v in prompt.items()}
        self.stream = stream
        self.bar = None
        self.bar_node = None

    def on_event(self, kind: str, data: dict) -> None:
        if kind == "executing" and data.get("node") is not None:
            print(f"running {self.titles.get(str(data['node']), data['node'])}", file=self.stream, flush=True)
        elif kind == "progress":
            node = str(data.get("node"))
            if self.bar is None or self.bar_node != node:
                self.close()
                self.bar = tqdm(total=data["max"], desc=self.titles.get(node, node), file=self.stream,
                                unit="step", dynamic_ncols=True)
                self.bar_node = node
            self.bar.n = data["value"]
            self.bar.refresh()
        elif kind == LOSS_EVENT:
            self.on_loss(data)
        elif kind == PREVIEW_EVENT and self.on_preview is not None:
            where = self.on_preview(data)
            tqdm.write(f"motion preview after step {data['step']} of {data['total']}: {where}", file=self.stream)
        elif kind == "execution_error":
            self.close()

    def on_loss(self, data: dict) -> None:
        """The live loss beside the bar; a line per held-out evaluation, and one saying where and why a run stopped."""
        if data.get("points") and self.bar is not None:
            loss = data["points"][-1][1]
            self.bar.set_postfix_str("loss " + ("not finite" if loss is None else f"{loss:.4f}"))
        for step, loss in data.get("held_out") or []:
            tqdm.write(f"held-out loss at step {step}: " + ("not finite" if loss is None else f"{loss:.4f}"),
                       file=self.stream)
        if stopped := data.get("stopped"):
            tqdm.write(f"stopped at step {stopped['step']} of {data.get('total')}: {stopped['reason']}",
                       file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
