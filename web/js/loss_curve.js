// Live loss curve on the Optimize Motion Embedding node.
// The server sends "reenact_anything.loss" events ({node, total, reset, points: [[step, loss], ...]});
// this extension keeps the points on the node and draws them in a panel under its widgets.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const EVENT = "reenact_anything.loss";
const NODE_TYPE = "OptimizeMotionEmbedding";
const PANEL_HEIGHT = 120;
const MARGIN = 10;

function curveState(node) {
  if (!node.reenactLoss) node.reenactLoss = { total: 0, points: [] };
  return node.reenactLoss;
}

function lossRange(points) {
  const values = points.map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v));
  if (!values.length) return null;
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < 1e-12) { high += 0.5; low -= 0.5; }
  return [low, high];
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
  const range = lossRange(state.points);
  if (!range) {
    ctx.fillText("loss curve: runs show here", MARGIN + 6, top + 16);
    ctx.restore();
    return;
  }
  const [low, high] = range;
  const total = Math.max(state.total, state.points[state.points.length - 1][0], 1);
  const x = (step) => MARGIN + 4 + ((width - 8) * step) / total;
  const y = (loss) => top + PANEL_HEIGHT - 6 - ((PANEL_HEIGHT - 22) * (loss - low)) / (high - low);
  ctx.strokeStyle = "#4fc3f7";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  let drawing = false;
  for (const [step, loss] of state.points) {
    if (loss === null || !Number.isFinite(loss)) { drawing = false; continue; }
    if (drawing) ctx.lineTo(x(step), y(loss)); else ctx.moveTo(x(step), y(loss));
    drawing = true;
  }
  ctx.stroke();
  const [lastStep, lastLoss] = state.points[state.points.length - 1];
  const shown = lastLoss === null ? "not finite" : lastLoss.toPrecision(4);
  ctx.fillText(`step ${lastStep}/${state.total}  loss ${shown}`, MARGIN + 6, top + 14);
  ctx.restore();
}

function receive({ detail }) {
  const node = app.graph?.getNodeById(Number(detail.node)) ?? app.graph?.getNodeById(detail.node);
  if (!node || node.type !== NODE_TYPE) return;
  const state = curveState(node);
  if (detail.reset) state.points = [];
  state.total = detail.total;
  state.points.push(...detail.points);
  node.setDirtyCanvas(true, true);
}

app.registerExtension({
  name: "ReenactAnything.LossCurve",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      this.setSize([Math.max(this.size[0], 340), this.size[1] + PANEL_HEIGHT + MARGIN]);
      return result;
    };
    const computeSize = nodeType.prototype.computeSize;
    nodeType.prototype.computeSize = function () {
      const size = computeSize ? computeSize.apply(this, arguments) : [340, 200];
      return [size[0], size[1] + PANEL_HEIGHT + MARGIN];
    };
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      const result = onDrawForeground?.apply(this, arguments);
      if (!this.flags?.collapsed) drawCurve(this, ctx);
      return result;
    };
  },
  setup() {
    api.addEventListener(EVENT, receive);
  },
});
