"""What a person sees: one overall line (done, running, failed, time left) and a line per server while the run goes
on; at the end a summary table and a contact sheet of the library (each motion's reference frames and, for apply,
its results)."""
import os
import sys
import time

from .manifest import DONE, FAILED, PENDING, RUNNING

SHEET_FRAMES = 6
THUMB = 96


class Progress:
    def __init__(self, scheduler, stream=sys.stderr, every: float = 5.0):
        self.scheduler, self.stream, self.every = scheduler, stream, every
        self.started = time.monotonic()
        self.last = 0.0

    def show(self, force=False):
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        s = self.scheduler
        states = s.manifest.read()
        ids = list(s.jobs)
        tally = {k: sum(states[i].status == k for i in ids) for k in (DONE, RUNNING, FAILED, PENDING)}
        finished_here = [h["seconds"].get("total", 0) for i in ids for h in states[i].history
                         if h["outcome"] == "done" and h.get("seconds")]
        live = max(1, len(s.live))
        left = ""
        if finished_here and tally[PENDING] + tally[RUNNING]:
            per_job = sum(finished_here) / len(finished_here)
            left = f", about {per_job * (tally[PENDING] + tally[RUNNING]) / live / 60:.1f} min left"
        lines = [f"[library] {tally[DONE]}/{len(ids)} done, {tally[RUNNING]} running, {tally[FAILED]} failed, "
                 f"{tally[PENDING]} pending{left}"]
        for server in s.servers:
            running = s.running.get(server.name)
            if server.name not in s.live:
                what = f"gone: {s.server_notes.get(server.name, '')}"
            elif running:
                job, attempt, since = running
                what = f"{job.kind} {job.id} (attempt {attempt}), {now - since:.0f} s"
            else:
                what = "idle"
            lines.append(f"  {server.name}: {what}")
        print("\n".join(lines), file=self.stream, flush=True)


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
    partial = path + ".partial.png"
    sheet.save(partial)
    os.replace(partial, path)
    return path
