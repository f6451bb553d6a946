// Live motion preview on the Optimize Motion Embedding node.
// With preview_every > 0, nodes/live_events.py sends PREVIEW_EVENT events {node, prompt_id, step, total,
// image: {filename, subfolder, type}} while the run goes on: an animated WEBP of the motion learned so far, in
// ComfyUI's temp folder. ComfyUI's own preview (the progress bar's image) shows one still frame, so this
// extension loads the animation through /view into an <img> in the node's live panel (live_panel.js), above the
// loss curve. The browser plays the animation by itself: nothing redraws the canvas for it.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { chainCallback, isRunningPrompt, nodeByExecutionId } from "./running_prompt.js";
import { livePanel, showPreview } from "./live_panel.js";

// JS cannot import reenact_core/events.py: this is the one copy of its PREVIEW_EVENT, and
// tests/test_pack_loading.py checks that the two agree.
const PREVIEW_EVENT = "reenact_anything.preview";
const NODE_TYPE = "OptimizeMotionEmbedding";

// The decoded preview replaces the shown one only once loaded, so the panel never blanks between previews.
function receive({ detail }) {
  if (!isRunningPrompt(detail.prompt_id)) return;
  const node = nodeByExecutionId(detail.node);
  if (node?.type !== NODE_TYPE) return;
  const { filename, subfolder, type } = detail.image;
  const image = new Image();
  image.onload = () => {
    const panel = livePanel(node);
    image.className = panel.image.className;
    image.alt = panel.image.alt;
    image.style.cssText = panel.image.style.cssText;
    panel.image.replaceWith(image);
    panel.image = image;
    panel.caption.textContent = `motion after step ${detail.step} of ${detail.total}`;
    node.reenactPreview ??= { steps: [], lossPointsAtPreview: [] };
    Object.assign(node.reenactPreview, { image, caption: panel.caption.textContent });
    node.reenactPreview.steps.push(detail.step);
    node.reenactPreview.lossPointsAtPreview.push(node.reenactLoss?.points.length ?? 0);
    showPreview(node, panel);
  };
  image.src = api.apiURL(`/view?${new URLSearchParams({ filename, subfolder, type })}`);
}

app.registerExtension({
  name: "ReenactAnything.MotionPreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    chainCallback(nodeType.prototype, "onNodeCreated", function () {
      livePanel(this);
    });
  },
  setup() {
    api.addEventListener(PREVIEW_EVENT, receive);
  },
});
