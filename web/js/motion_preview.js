// Live motion preview on the Optimize Motion Embedding node.
// With preview_every > 0, nodes/live_events.py sends PREVIEW_EVENT events {node, prompt_id, step, total,
// image: {filename, subfolder, type}} while the run goes on: an animated WEBP of the motion learned so far, in
// ComfyUI's temp folder. ComfyUI's own preview (the progress bar's image) shows one still frame, so this
// extension loads the animation through /view and draws it on the node, in a panel above the loss curve
// (loss_curve.js), redrawing while it plays.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { chainCallback, isRunningPrompt, nodeByExecutionId } from "./running_prompt.js";

// JS cannot import reenact_core/events.py: this is the one copy of its PREVIEW_EVENT, and
// tests/test_pack_loading.py checks that the two agree.
const PREVIEW_EVENT = "reenact_anything.preview";
const NODE_TYPE = "OptimizeMotionEmbedding";
const PREVIEW_HEIGHT = 220;
const CAPTION_HEIGHT = 16;
const MARGIN = 10;
const CURVE_HEIGHT = 120 + MARGIN; // loss_curve.js' panel, which stays at the bottom of the node
const REDRAW_MS = 100; // an animated image on a canvas shows its current frame only when the canvas redraws

let redrawTimer = null;

function receive({ detail }) {
  if (!isRunningPrompt(detail.prompt_id)) return;
  const node = nodeByExecutionId(detail.node);
  if (node?.type !== NODE_TYPE) return;
  const { filename, subfolder, type } = detail.image;
  const image = new Image();
  image.onload = () => {
    const first = !node.reenactPreview;
    node.reenactPreview = Object.assign(node.reenactPreview ?? { steps: [], lossPointsAtPreview: [] }, {
      image, caption: `motion after step ${detail.step} of ${detail.total}`,
    });
    node.reenactPreview.steps.push(detail.step);
    node.reenactPreview.lossPointsAtPreview.push(node.reenactLoss?.points.length ?? 0);
    if (first) node.setSize([node.size[0], Math.max(node.size[1], node.computeSize()[1])]);
    redrawTimer ??= setInterval(() => app.graph?.setDirtyCanvas(true, false), REDRAW_MS);
    node.setDirtyCanvas(true, true);
  };
  image.src = api.apiURL(`/view?${new URLSearchParams({ filename, subfolder, type })}`);
}

function drawPreview(node, ctx) {
  const preview = node.reenactPreview;
  const top = node.size[1] - CURVE_HEIGHT - PREVIEW_HEIGHT - MARGIN;
  const width = node.size[0] - 2 * MARGIN;
  const box = PREVIEW_HEIGHT - CAPTION_HEIGHT;
  const scale = Math.min(width / preview.image.naturalWidth, box / preview.image.naturalHeight);
  const [w, h] = [preview.image.naturalWidth * scale, preview.image.naturalHeight * scale];
  ctx.save();
  ctx.fillStyle = "#1b1b1b";
  ctx.fillRect(MARGIN, top, width, PREVIEW_HEIGHT);
  ctx.drawImage(preview.image, MARGIN + (width - w) / 2, top + (box - h) / 2, w, h);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#aaa";
  ctx.textAlign = "center";
  ctx.fillText(preview.caption, MARGIN + width / 2, top + PREVIEW_HEIGHT - 4);
  ctx.restore();
  preview.drawn = { x: MARGIN + (width - w) / 2, y: top + (box - h) / 2, width: w, height: h };
}

app.registerExtension({
  name: "ReenactAnything.MotionPreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    chainCallback(nodeType.prototype, "computeSize", function (size) {
      if (!this.reenactPreview) return undefined;
      const [width, height] = size ?? [340, 200];
      return [width, height + PREVIEW_HEIGHT + MARGIN];
    });
    chainCallback(nodeType.prototype, "onDrawForeground", function (_result, ctx) {
      if (this.reenactPreview && !this.flags?.collapsed) drawPreview(this, ctx);
    });
  },
  setup() {
    api.addEventListener(PREVIEW_EVENT, receive);
  },
});
