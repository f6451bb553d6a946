"""What a person sees: a progress bar for the run (done, running, failed, pending, time left) and a line per server
while the run goes on; at the end a summary table and a contact sheet of the library (each motion's reference frames
and, for apply, its results)."""
import io
import os
import sys
import threading
import time

from tqdm import tqdm

from reenact_core.file_writes import replace_whole

from .manifest import DONE, FAILED, PENDING, RUNNING

SHEET_FRAMES = 6
THUMB = 96


class Progress:
    """tqdm bars: one for the whole run (jobs finished of all) and one line per server (its job, or why it is idle).
    In a terminal they redraw in place; in a plain log (not a terminal) the same lines are printed every
    `log_every` seconds, so a log holds readable lines rather than carriage returns."""

    def __init__(self, scheduler, stream=None, log_every: float = 30.0):
        self.scheduler = scheduler
        self.stream = stream or sys.stderr
        self.terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every, self.logged = log_every, 0.0
        self.lock = threading.Lock()
        self.out = self.stream if self.terminal else io.StringIO()
        self.overall = None   # made at the first look, from the jobs finished before: its rate is this run's
        out = self.out
        self.bars = {server.name: tqdm(total=0, bar_format="{desc}", desc=f"{server.name}: idle", file=out,
                                       position=i + 1, leave=False)
                     for i, server in enumerate(scheduler.servers)}

    def show(self):
        with self.lock:
            self._update()
            if self.terminal:
                for bar in (self.overall, *self.bars.values()):
                    bar.refresh()
            elif time.monotonic() - self.logged >= self.log_every:
                self._log()

    def _update(self):
        s, now = self.scheduler, time.monotonic()
        with s.lock:
            s.refresh()
            tally = dict(s.tally)
        finished = tally.get(DONE, 0) + tally.get(FAILED, 0)
        if self.overall is None:
            self.overall = tqdm(total=len(s.jobs), initial=finished, desc="library", unit="job", file=self.out,
                                dynamic_ncols=True, position=0, leave=True)
        self.overall.n = finished
        self.overall.set_postfix_str(f"{tally.get(DONE, 0)} done, {tally.get(RUNNING, 0)} running, "
                                     f"{tally.get(FAILED, 0)} failed, {tally.get(PENDING, 0)} pending", refresh=False)
        for server in s.servers:
            running = s.running.get(server.name)
            if server.name not in s.live:
                what = f"gone: {s.server_notes.get(server.name, '')}"
            elif server.name in s.resting:
                what = s.server_notes.get(server.name, "resting")
            elif running:
                job, attempt, since = running
                what = f"{job.kind} {job.id} (attempt {attempt}), {now - since:.0f} s"
            else:
                what = "idle" + (f" ({s.server_notes[server.name]})" if server.name in s.server_notes else "")
            self.bars[server.name].set_description_str(f"  {server.name}: {what}", refresh=False)

    def _log(self):
        self.logged = time.monotonic()
        lines = [str(self.overall)] + [str(bar) for bar in self.bars.values()]
        print("\n".join(lines), file=self.stream, flush=True)

    def write(self, message: str):
        """A line of its own that does not break the bars (tqdm.write in a terminal)."""
        with self.lock:
            if self.terminal:
                tqdm.write(message, file=self.stream)
            else:
                print(message, file=self.stream, flush=True)

    def close(self):
        with self.lock:
            self._update()
            if not self.terminal:
                self._log()
            for bar in (*self.bars.values(), self.overall):
                bar.close()


def summary_table(states: dict, ids) -> str:
    rows = ["| job | kind | input | status | attempts | server | seconds | output or reason |", "|---|" * 8]
    rows[1] = "|---" * 8 + "|"
    for job_id in ids:
        st = states[job_id]
        source = os.path.basename(st.inputs.get("reference") or st.inputs.get("image") or "")
        if st.kind == "apply":
            source = f"{st.inputs.get('motion')} x {source}"
        total = next((h["seconds"].get("total") for h in reversed(st.history) if h["outcome"] == "done"), "")
        detail = st.output if st.status == DONE else st.reason
        rows.append(f"| {job_id} | {st.kind} | {source} | {st.status} | {st.attempts} | {st.server} | {total} | "
                    f"{detail} |")
    return "\n".join(rows)


def _frames(path: str, count: int):
    from PIL import Image
    from reenact_core.video_frames import decode_all_frames
    frames = decode_all_frames(path)
    picks = [frames[round(i * (len(frames) - 1) / max(1, count - 1))] for i in range(min(count, len(frames)))]
    return [Image.fromarray(f).resize((THUMB, THUMB), Image.NEAREST) for f in picks]


def contact_sheet(states: dict, ids, path: str) -> str | None:
    """One row per learned motion: its reference frames; then, for each apply job of that motion, its result."""
    from PIL import Image, ImageDraw
    rows = []
    for job_id in ids:
        st = states[job_id]
        if st.kind != "learn" or st.status != DONE:
            continue
        rows.append((f"{job_id} {os.path.basename(st.inputs['reference'])}", st.inputs["reference"]))
        rows += [(f"  -> on {os.path.basename(a.inputs['image'])}", a.output) for a in states.values()
                 if a.kind == "apply" and a.status == DONE and a.inputs.get("motion") == job_id]
    if not rows:
        return None
    label_w = 260
    sheet = Image.new("RGB", (label_w + SHEET_FRAMES * THUMB, len(rows) * THUMB), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, video) in enumerate(rows):
        draw.text((6, r * THUMB + THUMB // 2 - 6), label[:40], fill="black")
        try:
            for c, frame in enumerate(_frames(video, SHEET_FRAMES)):
                sheet.paste(frame, (label_w + c * THUMB, r * THUMB))
        except Exception as e:  # an unreadable reference must not lose the rest of the sheet
            draw.text((label_w + 6, r * THUMB + 6), f"cannot show: {e}"[:60], fill="red")
    return replace_whole(path, lambda temporary: sheet.save(temporary, format="PNG"))
