// Drives the real ComfyUI frontend in Debian's headless chromium (playwright-core, no browser download).
// Usage: node check_frontend.mjs <server-url> <artifact-dir> <config.json>
// config: {workflows: {name: uiJson}, screenshotWorkflow: name,
//          curve: {workflow: uiJson, widgets: {nodeType: {widget: value}}, eventName: LOSS_EVENT}}, or
// {baselineOnly: true, baselineVideo: name} to only load the page and report its console errors (run against a
// ComfyUI without the pack): the page then shows ComfyUI's own Load Video node on that input file a few times, in the
// classic canvas and in Nodes 2.0, as the pack's run shows its Load Motion Reference (the frontend's own video
// upload widget and preview, whose requests Chromium aborts and restarts as it reads the video).
// Prints one JSON object on its last line: console errors, registered node types, library text, the frontend's
// own API conversion of each workflow, the loss points the live curve received, the motion preview shown on the
// node (preview: the steps it arrived at, its image's size and caption), the live panel as each mode shows it
// (panels.app, panels.classic, panels.nodes2: where its preview and curve are on the page, the points the curve drew;
// App mode shows it in the app's input list), and
// what the curve kept and drew of loss events fed to an optimiser inside a subgraph (subgraphCurve).
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const [url, artifacts, configPath] = process.argv.slice(2);
// The frontend's setting for its "Nodes 2.0" mode (Vue nodes), as ComfyUI_frontend's settings name it.
const VUE_NODES_SETTING = "Comfy.VueNodes.Enabled";
// App mode (linear mode): the frontend's own command to enter and leave it, and the panel's widget name.
const APP_MODE_COMMAND = "Comfy.ToggleLinear";
const PANEL_WIDGET = "reenact_live_panel";
// The node library's sidebar button: a class up to frontend 1.49, a data-testid from 1.5x on.
const LIBRARY_BUTTON = "button.node-library-tab-button, [data-testid='node-library-tab-button']";

// Run in the page: where the optimiser's live panel is on the page and what it shows (page pixels).
function panelReport(vueNodesSetting) {
  const node = window.app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding");
  const panel = node.reenactPanel;
  const rect = (element) => {
    const box = element.getBoundingClientRect();
    return { x: box.x, y: box.y, width: box.width, height: box.height };
  };
  const shown = (element) => element.isConnected && element.getClientRects().length > 0 &&
    getComputedStyle(element).visibility !== "hidden";
  const vueNode = panel.root.closest("[data-node-id]");
  const appItem = panel.root.closest("[data-testid='app-mode-widget-item']");
  return { shown: shown(panel.root), inAppMode: Boolean(appItem), curveShown: shown(panel.curve), imageShown: shown(panel.image),
           inVueNode: vueNode ? vueNode.getAttribute("data-node-id") : null, nodeId: String(node.id),
           panelsOnPage: document.querySelectorAll(".reenact-live-panel").length,
           root: rect(panel.root), curve: rect(panel.curve), image: rect(panel.image),
           drawn: { ...panel.curve.dataset }, canvasPixels: [panel.curve.width, panel.curve.height],
           vueNodes: window.app.extensionManager.setting.get(vueNodesSetting) };
}
const config = JSON.parse(fs.readFileSync(configPath, "utf8"));
fs.mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { consoleErrors: [], pageErrors: [], failedRequests: [] };
class BaselineDone extends Error {}
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on("console", (msg) => { if (msg.type() === "error") result.consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => result.pageErrors.push(String(err)));
  page.on("requestfailed", (req) => result.failedRequests.push(`${req.url()} ${req.failure()?.errorText}`));
  page.on("response", (res) => { if (res.status() >= 400) result.failedRequests.push(`${res.url()} ${res.status()}`); });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.app?.graph && window.LiteGraph?.registered_node_types, null,
    { timeout: 120000 });
  await page.waitForTimeout(5000);
  if (config.baselineOnly) {
    result.extensions = await page.evaluate(() => window.app.extensions.map((e) => e.name));
    for (const vueNodes of [false, true, false]) {
      await page.evaluate(([id, on]) => window.app.extensionManager.setting.set(id, on), [VUE_NODES_SETTING, vueNodes]);
      for (let i = 0; i < 3; i++) {
        await page.evaluate((file) => {
          window.app.graph.clear();
          const node = window.LiteGraph.createNode("LoadVideo");
          window.app.graph.add(node);
          const widget = node.widgets.find((w) => w.name === "file");
          widget.value = file;
          widget.callback?.(file);
        }, config.baselineVideo);
        await page.waitForTimeout(1500);
      }
    }
    throw new BaselineDone();
  }
  await page.waitForFunction(() => window.app.extensions?.some((e) => e.name === "ReenactAnything.LossCurve"),
    null, { timeout: 60000 });
  result.extensions = await page.evaluate(() => window.app.extensions.map((e) => e.name));
  result.registered = await page.evaluate(() => Object.keys(window.LiteGraph.registered_node_types));

  // A fresh user folder opens the template browser on first start; close any dialog as a user would.
  for (let i = 0; i < 5 && await page.locator(".p-dialog-mask").count(); i++) {
    await page.keyboard.press("Escape");
    await page.waitForTimeout(500);
  }
  // The node library sidebar: open it and search for the pack's category.
  try {
    const libraryButton = page.locator(LIBRARY_BUTTON).first();
    await libraryButton.click({ timeout: 10000 });
    const search = page.locator(".node-lib-search-box input, .comfy-vue-side-bar-container input[placeholder^='Search'], " +
                                "input[placeholder*='Search']").first();
    await search.fill("Motion Embedding", { timeout: 10000 });
    await page.waitForTimeout(1500);
    result.libraryText = await page.evaluate(() => document.body.innerText);
    await page.screenshot({ path: path.join(artifacts, "node_library.png") });
    await libraryButton.click();
  } catch (err) {
    result.libraryError = String(err);
  }

  // The frontend's own conversion of each bundled workflow to the API format.
  result.converted = {};
  for (const [name, workflow] of Object.entries(config.workflows)) {
    result.converted[name] = await page.evaluate(async (wf) => {
      await window.app.loadGraphData(wf);
      return (await window.app.graphToPrompt()).output;
    }, workflow);
  }

  // Live loss curve: queue a tiny run from this page, as a user would press Queue. The workflow opens in App mode
  // with the live panel as the app's input (a workflow's extra.linearData, as the App Builder saves it), so the run's
  // points and preview arrive while the panel is in the app's list; the classic canvas and Nodes 2.0 come after.
  const curve = config.curve;
  const optimiserId = curve.workflow.nodes.find((n) => n.type === "OptimizeMotionEmbedding").id;
  const appWorkflow = { ...curve.workflow, extra: { ...(curve.workflow.extra || {}), linearMode: true,
    linearData: { inputs: [[optimiserId, PANEL_WIDGET]], outputs: [optimiserId] } } };
  result.appModeCommand = await page.evaluate((id) =>
    Boolean(window.app.extensionManager.command.commands?.find?.((c) => c.id === id)), APP_MODE_COMMAND);
  await page.evaluate(async ({ workflow, widgets }) => {
    await window.app.loadGraphData(workflow);
    for (const node of window.app.graph._nodes) {
      for (const [name, value] of Object.entries(widgets[node.type] || {})) {
        const widget = node.widgets.find((w) => w.name === name);
        if (!widget) throw new Error(`${node.type} has no widget ${name}`);
        widget.value = value;
      }
    }
    await window.app.queuePrompt(0, 1);
  }, { ...curve, workflow: appWorkflow });
  const steps = curve.widgets.OptimizeMotionEmbedding.steps;
  await page.waitForFunction((n) => {
    const node = window.app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding");
    return node?.reenactLoss?.points.length >= n;
  }, steps, { timeout: Number(process.env.CURVE_TIMEOUT_MS || 600000), polling: 500 });
  // The motion preview (preview_every > 0): the animated WEBP the extension shows on the node, once loaded.
  const previews = Math.floor(steps / (curve.widgets.OptimizeMotionEmbedding.preview_every || Infinity));
  if (previews > 0) {
    await page.waitForFunction((n) => {
      const panel = window.app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding")?.reenactPreview;
      return panel?.steps.length >= n && panel.image.complete && panel.image.naturalWidth > 0;
    }, previews, { timeout: 120000, polling: 500 });
  }
  // The live panel in each mode: the classic canvas, then Nodes 2.0 (Vue nodes), whose nodes are DOM elements
  // that mount the panel's DOM widget inside them. Each: the whole optimiser node in view, a screenshot, and what
  // the panel shows there (where its parts are on the page, what the curve's canvas drew).
  result.lossPoints = await page.evaluate(() =>
    window.app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding").reenactLoss.points);
  result.panels = {};
  // App mode: the panel inside the app's input list, then back to the graph with the frontend's own command.
  try {
    await page.waitForFunction(() => document.querySelector("[data-testid='app-mode-widget-item'] .reenact-live-panel"),
      null, { timeout: 30000 });
    // The first visit to App mode opens the frontend's "Welcome to Apps" tour; a user skips it.
    const skip = page.getByRole("button", { name: "Skip", exact: true });
    if (await skip.count()) await skip.first().click();
    await page.waitForTimeout(1500);
    result.panels.app = await page.evaluate(panelReport, VUE_NODES_SETTING);
  } catch (err) {
    result.appModeError = String(err);
  }
  await page.screenshot({ path: path.join(artifacts, "loss_curve_app_mode.png") });
  // App mode hides the graph's canvas (the frontend's v-show on #graph-canvas-container) and shows the app instead.
  const graphShown = () => {
    const container = document.querySelector("#graph-canvas-container");
    return Boolean(container) && container.getClientRects().length > 0 && getComputedStyle(container).display !== "none";
  };
  result.graphShownInAppMode = await page.evaluate(graphShown);
  await page.evaluate((id) => window.app.extensionManager.command.execute(id), APP_MODE_COMMAND);
  await page.waitForTimeout(1500);
  result.graphShownAfterLeaving = await page.evaluate(graphShown);
  for (const [mode, vueNodes, shot] of [["classic", false, "loss_curve.png"], ["nodes2", true, "loss_curve_nodes2.png"]]) {
    await page.evaluate(([id, on]) => window.app.extensionManager.setting.set(id, on), [VUE_NODES_SETTING, vueNodes]);
    if (vueNodes) {
      await page.waitForFunction(() => document.querySelector("[data-node-id] .reenact-live-panel"), null,
        { timeout: 60000 });
    }
    await page.evaluate(() => {
      const node = window.app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding");
      const canvas = window.app.canvas;
      const scale = Math.min(1.2, (window.innerHeight - 140) / (node.size[1] + 40));
      canvas.ds.scale = scale;
      canvas.ds.offset = [500 / scale - node.pos[0], 100 / scale - node.pos[1]];
      canvas.setDirty(true, true);
      canvas.draw(true, true);
    });
    await page.waitForTimeout(1500);
    result.panels[mode] = await page.evaluate(panelReport, VUE_NODES_SETTING);
    await page.screenshot({ path: path.join(artifacts, shot) });
    if (previews > 0 && !vueNodes) {
      const box = result.panels[mode].image;
      await page.screenshot({ path: path.join(artifacts, "motion_preview.png"),
                              clip: { x: box.x, y: box.y, width: box.width, height: box.height + 20 } });
    }
  }
  await page.evaluate((id) => window.app.extensionManager.setting.set(id, false), VUE_NODES_SETTING);
  await page.waitForTimeout(500);
  if (previews > 0) {
    result.preview = await page.evaluate(() => {
      const panel = window.app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding").reenactPreview;
      return { steps: panel.steps, lossPointsAtPreview: panel.lossPointsAtPreview, src: panel.image.src,
               naturalWidth: panel.image.naturalWidth, naturalHeight: panel.image.naturalHeight,
               caption: panel.caption };
    });
  }

  // The curve inside a subgraph, and only for the running prompt: once the queue is idle, the optimiser is
  // turned into a subgraph and the page is fed loss events as the server would send them, addressed to
  // "<subgraph node>:<inner node>". Its panel is drawn, with a non-finite loss, on a canvas of its own.
  await page.waitForFunction(async () => {
    const queue = await (await fetch("queue")).json();
    return !queue.queue_running.length && !queue.queue_pending.length;
  }, null, { timeout: 600000, polling: 1000 });
  const checked = await page.evaluate(async (eventName) => {
    const { app } = window;
    const api = app.api;
    const optimiser = app.graph._nodes.find((x) => x.type === "OptimizeMotionEmbedding");
    const holder = app.graph.convertToSubgraph(new Set([optimiser])).node;
    const inner = holder.subgraph._nodes.find((x) => x.type === "OptimizeMotionEmbedding");
    const node = `${holder.id}:${inner.id}`;
    const points = () => (inner.reenactLoss?.points ?? []).map((p) => [...p]);
    const loss = (prompt_id, reset, pts, extra = {}) =>
      api.dispatchCustomEvent(eventName, { node, prompt_id, total: 6, reset, points: pts, ...extra });
    const seen = {};
    api.dispatchCustomEvent("execution_start", { prompt_id: "check-a" });
    loss("check-other", true, [[1, 0.5]]);
    seen.otherPrompt = points();
    loss("check-a", true, [[1, 1.0], [2, null]]);
    loss("check-a", false, [[3, 0.05], [4, 0.002], [5, null], [6, 0.001]]);
    seen.runningPrompt = points();
    loss("check-a", false, [[7, 0.0009]], { held_out: [[2, 0.5], [4, 0.01]] });
    loss("check-a", false, [[8, 0.0008]], { held_out: [[2, 0.5], [4, 0.01], [8, 0.002]],
                                            stopped: { step: 8, reason: "held-out loss rose" } });
    seen.withHeldOut = { points: points().length, heldOut: inner.reenactLoss.heldOut.map((p) => [...p]),
                         stopped: inner.reenactLoss.stopped };
    const canvas = document.createElement("canvas");
    [canvas.width, canvas.height] = [340, 120];
    seen.drawn = inner.reenactPanel.drawCurveInto(canvas.getContext("2d"), canvas.width, canvas.height);
    seen.png = canvas.toDataURL("image/png");
    api.dispatchCustomEvent("execution_success", { prompt_id: "check-a" });
    api.dispatchCustomEvent("executing", null);
    api.dispatchCustomEvent("execution_start", { prompt_id: "check-b" });
    loss("check-b", false, [[1, 2.0]]);
    seen.nextPrompt = points();
    api.dispatchCustomEvent("execution_success", { prompt_id: "check-b" });
    api.dispatchCustomEvent("executing", null);
    return seen;
  }, config.curve.eventName);
  fs.writeFileSync(path.join(artifacts, "loss_curve_subgraph.png"),
    Buffer.from(checked.png.split(",")[1], "base64"));
  delete checked.png;
  result.subgraphCurve = checked;
  await page.evaluate(() => window.app.canvas.ds.reset?.());
  await page.evaluate(async (wf) => { await window.app.loadGraphData(wf); }, config.workflows[config.screenshotWorkflow]);
  // Fit every node and group in the part of the window the side and top bars leave free. The window is
  // made taller first: below a zoom of 0.6 the canvas draws nodes without their text.
  await page.setViewportSize({ width: 1600, height: 1800 });
  await page.waitForTimeout(500);
  await page.evaluate(() => {
    const canvas = window.app.canvas;
    const boxes = window.app.graph._nodes.map((n) => [n.pos[0], n.pos[1] - 30, n.size[0], n.size[1] + 30]);
    for (const g of window.app.graph._groups || []) boxes.push([g.pos[0], g.pos[1], g.size[0], g.size[1]]);
    const x0 = Math.min(...boxes.map((b) => b[0])), y0 = Math.min(...boxes.map((b) => b[1]));
    const x1 = Math.max(...boxes.map((b) => b[0] + b[2])), y1 = Math.max(...boxes.map((b) => b[1] + b[3]));
    const rect = canvas.canvas.getBoundingClientRect();   // canvas pixels start at its own corner
    const left = Math.max(20, 80 - rect.left), top = Math.max(20, 90 - rect.top), margin = 20;
    const scale = Math.min((window.innerWidth - rect.left - left - margin) / (x1 - x0),
                           (window.innerHeight - rect.top - top - margin) / (y1 - y0));
    canvas.ds.scale = scale;
    canvas.ds.offset = [left / scale - x0, top / scale - y0];
    canvas.setDirty(true, true);
    canvas.draw(true, true);
  });
  await page.waitForTimeout(1000);
  await page.screenshot({ path: path.join(artifacts, "workflow.png") });
} catch (err) {
  if (!(err instanceof BaselineDone)) throw err;
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
