// Live loss curve on the Optimize Motion Embedding node.
// nodes/live_events.py sends LOSS_EVENT events {node, prompt_id, total, reset, points: [[step, loss|null], ...]}:
// `node` is ComfyUI's execution id ("12", or "12:5" for node 5 inside the subgraph node 12 stands for), a null
// loss is a step whose loss was not finite. Two optional fields: held_out [[step, loss], ...] (a held-out
// evaluation loss, sent now and then; drawn as a second series with a legend) and stopped {step, reason} (the run
// stopped early; "stopped at step N" is shown). This extension keeps the points of the running prompt on the node
// and draws them on the canvas of the node's live panel (live_panel.js), on a log10 axis like the node's
// loss_curve IMAGE (reenact_core/loss_plot.py).
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { chainCallback, isRunningPrompt, nodeByExecutionId } from "./running_prompt.js";
import { CURVE_HEIGHT, livePanel } from "./live_panel.js";

// JS cannot import reenact_core/events.py: this is the one copy of its LOSS_EVENT, and
// tests/test_pack_loading.py checks that the two agree.
const LOSS_EVENT = "reenact_anything.loss";
const NODE_TYPE = "OptimizeMotionEmbedding";
const AXIS_WIDTH = 44; // the log axis' labels, left of the plot
const LOSS_FLOOR = 1e-12; // as loss_plot.py: log10(max(loss, 1e-12))
const TRAIN_COLOUR = "#4fc3f7";
const HELD_OUT_COLOUR = "#ffb74d";

function curveState(node) {
  if (!node.reenactLoss) node.reenactLoss = { source: null, total: 0, points: [], heldOut: [], stopped: null };
  return node.reenactLoss;
}

// Held-out points by step: an event may repeat earlier ones (the whole list so far) or bring only new ones.
function mergeByStep(known, added) {
  const byStep = new Map(known.map((point) => [point[0], point]));
  for (const point of added ?? []) byStep.set(point[0], point);
  return [...byStep.values()].sort((a, b) => a[0] - b[0]);
}

function receive({ detail }) {
  if (!isRunningPrompt(detail.prompt_id)) return;
  const node = nodeByExecutionId(detail.node);
  if (node?.type !== NODE_TYPE) return;
  const state = curveState(node);
  // A new prompt (or another instance of the same subgraph, whose nodes it shares) starts a new curve.
  const source = `${detail.prompt_id}/${detail.node}`;
  if (detail.reset || state.source !== source) {
    Object.assign(state, { source, points: [], heldOut: [], stopped: null });
  }
  state.total = detail.total;
  state.points.push(...detail.points);
  if (detail.held_out) state.heldOut = mergeByStep(state.heldOut, detail.held_out);
  if (detail.stopped) state.stopped = detail.stopped;
  redrawCurve(node);
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

// One series as a line; non-finite losses leave a gap, and a lone finite point between gaps is drawn as a dot.
function drawSeries(ctx, points, x, y, colour) {
  ctx.strokeStyle = ctx.fillStyle = colour;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let previous = null;
  points.forEach(([step, loss], i) => {
    const value = logLoss(loss);
    const next = logLoss(points[i + 1]?.[1] ?? null);
    if (value === null) { previous = null; return; }
    if (previous === null) ctx.moveTo(x(step), y(value)); else ctx.lineTo(x(step), y(value));
    if (previous === null && next === null) ctx.fillRect(x(step) - 1.5, y(value) - 1.5, 3, 3);
    previous = value;
  });
  ctx.stroke();
}

// "— train  — held-out", right-aligned at (right, baseline).
function drawLegend(ctx, right, baseline) {
  ctx.textAlign = "left";
  let at = right;
  for (const [label, colour] of [["held-out", HELD_OUT_COLOUR], ["train", TRAIN_COLOUR]]) {
    at -= ctx.measureText(label).width;
    ctx.fillStyle = "#aaa";
    ctx.fillText(label, at, baseline);
    at -= 18;
    ctx.fillStyle = colour;
    ctx.fillRect(at, baseline - 4, 14, 2);
    at -= 10;
  }
}

// Draws the curve of `state` filling a width x height context; returns what it drew, for the browser test.
export function drawCurve(ctx, state, width, height) {
  const drawn = { points: 0, heldOut: 0, legend: false, stopped: null };
  ctx.save();
  ctx.fillStyle = "#1b1b1b";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#444";
  ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#aaa";
  const range = logRange([...state.points, ...state.heldOut]);
  if (!range || !state.points.length) {
    ctx.fillText("loss curve (log scale): runs show here", 6, 16);
    ctx.restore();
    return drawn;
  }
  const [low, high] = range;
  const left = AXIS_WIDTH;
  const right = width - 8;
  const plotTop = state.stopped ? 38 : 26; // a second header line says where the run stopped
  const plotBottom = height - 8;
  const lastPoint = Math.max(state.points[state.points.length - 1][0], state.heldOut.at(-1)?.[0] ?? 0);
  const total = Math.max(state.total, lastPoint, 1);
  const x = (step) => left + ((right - left) * step) / total;
  const y = (value) => plotBottom - ((plotBottom - plotTop) * (value - low)) / (high - low);
  const [lastStep, lastLoss] = state.points[state.points.length - 1];
  const shown = logLoss(lastLoss) === null ? "not finite" : String(Number(lastLoss.toPrecision(4)));
  ctx.fillText(`step ${lastStep}/${state.total}  loss ${shown}`, 6, 14);
  if (state.stopped) {
    drawn.stopped = `stopped at step ${state.stopped.step}`;
    ctx.fillStyle = "#e57373";
    ctx.fillText(drawn.stopped, 6, 28);
    ctx.fillStyle = "#aaa";
  }
  if (state.heldOut.length) {
    drawLegend(ctx, width - 6, 14);
    drawn.legend = true;
  } else {
    ctx.textAlign = "right";
    ctx.fillText("loss, log10 axis", width - 6, 14);
    ctx.textAlign = "left";
  }
  ctx.fillStyle = "#aaa";
  drawLogAxis(ctx, y, low, high, left, right);
  drawSeries(ctx, state.points, x, y, TRAIN_COLOUR);
  drawn.points = state.points.length;
  if (state.heldOut.length) {
    drawSeries(ctx, state.heldOut, x, y, HELD_OUT_COLOUR);
    drawn.heldOut = state.heldOut.length;
  }
  if (state.stopped) {
    ctx.strokeStyle = "#e57373";
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(x(state.stopped.step), plotTop);
    ctx.lineTo(x(state.stopped.step), plotBottom);
    ctx.stroke();
  }
  ctx.restore();
  return drawn;
}

// Redraws the node's panel canvas at its shown size (device pixels, so it stays sharp when zoomed); the counts
// drawn go to the canvas' data-* attributes. A panel not laid out (collapsed, off screen) is drawn when it is.
function redrawCurve(node) {
  const canvas = livePanel(node).curve;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight || CURVE_HEIGHT;
  if (!width) return;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const drawn = drawCurve(ctx, curveState(node), width, height);
  canvas.dataset.points = String(drawn.points);
  canvas.dataset.heldOut = String(drawn.heldOut);
  canvas.dataset.legend = String(drawn.legend);
  canvas.dataset.stopped = drawn.stopped ?? "";
  canvas.title = node.reenactLoss?.stopped?.reason ?? "";
}

app.registerExtension({
  name: "ReenactAnything.LossCurve",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    chainCallback(nodeType.prototype, "onNodeCreated", function () {
      const panel = livePanel(this);
      panel.redraw = () => redrawCurve(this);
      // The curve drawn into any 2D context: the browser test draws a node that is not on screen.
      panel.drawCurveInto = (ctx, width, height) => drawCurve(ctx, curveState(this), width, height);
      this.setSize([Math.max(this.size[0], 340), Math.max(this.size[1], this.computeSize()[1])]);
    });
  },
  setup() {
    api.addEventListener(LOSS_EVENT, receive);
  },
});
