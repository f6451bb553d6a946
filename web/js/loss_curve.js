// Live loss curve on the Optimize Motion Embedding node.
// nodes/live_events.py sends LOSS_EVENT events {node, prompt_id, total, reset, points: [[step, loss|null], ...]}:
// `node` is ComfyUI's execution id ("12", or "12:5" for node 5 inside the subgraph node 12 stands for), a null
// loss is a step whose loss was not finite. This extension keeps the points of the running prompt on the node
// and draws them in a panel under its widgets, on a log10 axis like the node's loss_curve IMAGE
// (reenact_core/loss_plot.py).
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { chainCallback, isRunningPrompt, nodeByExecutionId } from "./running_prompt.js";

// JS cannot import reenact_core/events.py: this is the one copy of its LOSS_EVENT, and
// tests/test_pack_loading.py checks that the two agree.
const LOSS_EVENT = "reenact_anything.loss";
const NODE_TYPE = "OptimizeMotionEmbedding";
const PANEL_HEIGHT = 120;
const MARGIN = 10;
const AXIS_WIDTH = 44; // the log axis' labels, left of the plot
const LOSS_FLOOR = 1e-12; // as loss_plot.py: log10(max(loss, 1e-12))

function curveState(node) {
  if (!node.reenactLoss) node.reenactLoss = { source: null, total: 0, points: [] };
  return node.reenactLoss;
}

function receive({ detail }) {
  if (!isRunningPrompt(detail.prompt_id)) return;
  const node = nodeByExecutionId(detail.node);
  if (node?.type !== NODE_TYPE) return;
  const state = curveState(node);
  // A new prompt (or another instance of the same subgraph, whose nodes it shares) starts a new curve.
  const source = `${detail.prompt_id}/${detail.node}`;
  if (detail.reset || state.source !== source) Object.assign(state, { source, points: [] });
  state.total = detail.total;
  state.points.push(...detail.points);
  node.setDirtyCanvas(true, true);
}

const logLoss = (loss) => (loss === null || !Number.isFinite(loss) ? null : Math.log10(Math.max(loss, LOSS_FLOOR)));

function logRange(points) {
  let low = Infinity;
  let high = -Infinity;
  for (const [, loss] of points) {
    const value = logLoss(loss);
    if (value === null) continue;
    low = Math.min(low, value);
    high = Math.max(high, value);
  }
  if (low > high) return null;
  if (high - low < 1e-9) return [low - 0.5, high + 0.5]; // one value: a decade around it
  return [low, high];
}

const lossLabel = (value) =>
  value >= 1e-3 && value < 1e4 ? String(Number(value.toPrecision(3))) : value.toExponential(1);

// The y axis: the top and bottom values, and a faint line at each power of ten between them.
function drawLogAxis(ctx, y, low, high, left, right) {
  ctx.textAlign = "right";
  ctx.fillText(lossLabel(10 ** high), left - 4, y(high) + 4);
  ctx.fillText(lossLabel(10 ** low), left - 4, y(low) + 4);
  ctx.strokeStyle = "#333";
  ctx.lineWidth = 1;
  for (let decade = Math.ceil(low); decade <= Math.floor(high); decade++) {
    ctx.beginPath();
    ctx.moveTo(left, y(decade));
    ctx.lineTo(right, y(decade));
    ctx.stroke();
    const clear = Math.min(y(decade) - y(high), y(low) - y(decade)) > 12; // of the top and bottom labels
    if (clear) ctx.fillText(lossLabel(10 ** decade), left - 4, y(decade) + 4);
  }
  ctx.strokeStyle = "#666";
  ctx.beginPath();
  ctx.moveTo(left, y(high));
  ctx.lineTo(left, y(low));
  ctx.stroke();
  ctx.textAlign = "left";
}

function drawCurve(node, ctx) {
  const state = curveState(node);
  const width = node.size[0] - 2 * MARGIN;
  const top = node.size[1] - PANEL_HEIGHT - MARGIN;
  ctx.save();
  ctx.fillStyle = "#1b1b1b";
  ctx.fillRect(MARGIN, top, width, PANEL_HEIGHT);
  ctx.strokeStyle = "#444";
  ctx.strokeRect(MARGIN, top, width, PANEL_HEIGHT);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#aaa";
  const range = logRange(state.points);
  if (!range) {
    ctx.fillText("loss curve (log scale): runs show here", MARGIN + 6, top + 16);
    ctx.restore();
    return;
  }
  const [low, high] = range;
  const left = MARGIN + AXIS_WIDTH;
  const right = MARGIN + width - 8;
  const plotTop = top + 26;
  const plotBottom = top + PANEL_HEIGHT - 8;
  const total = Math.max(state.total, state.points[state.points.length - 1][0], 1);
  const x = (step) => left + ((right - left) * step) / total;
  const y = (value) => plotBottom - ((plotBottom - plotTop) * (value - low)) / (high - low);
  const [lastStep, lastLoss] = state.points[state.points.length - 1];
  const shown = logLoss(lastLoss) === null ? "not finite" : String(Number(lastLoss.toPrecision(4)));
  ctx.fillText(`step ${lastStep}/${state.total}  loss ${shown}`, MARGIN + 6, top + 14);
  ctx.textAlign = "right";
  ctx.fillText("loss, log10 axis", MARGIN + width - 6, top + 14);
  ctx.textAlign = "left";
  drawLogAxis(ctx, y, low, high, left, right);
  // Non-finite losses leave a gap in the line; a lone finite point between gaps is drawn as a dot.
  ctx.strokeStyle = ctx.fillStyle = "#4fc3f7";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let previous = null;
  state.points.forEach(([step, loss], i) => {
    const value = logLoss(loss);
    const next = logLoss(state.points[i + 1]?.[1] ?? null);
    if (value === null) { previous = null; return; }
    if (previous === null) ctx.moveTo(x(step), y(value)); else ctx.lineTo(x(step), y(value));
    if (previous === null && next === null) ctx.fillRect(x(step) - 1.5, y(value) - 1.5, 3, 3);
    previous = value;
  });
  ctx.stroke();
  ctx.restore();
}

app.registerExtension({
  name: "ReenactAnything.LossCurve",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    chainCallback(nodeType.prototype, "onNodeCreated", function () {
      this.setSize([Math.max(this.size[0], 340), this.size[1] + PANEL_HEIGHT + MARGIN]);
    });
    chainCallback(nodeType.prototype, "computeSize", function (size) {
      const [width, height] = size ?? [340, 200];
      return [width, height + PANEL_HEIGHT + MARGIN];
    });
    chainCallback(nodeType.prototype, "onDrawForeground", function (_result, ctx) {
      if (!this.flags?.collapsed) drawCurve(this, ctx);
    });
  },
  setup() {
    api.addEventListener(LOSS_EVENT, receive);
  },
});
