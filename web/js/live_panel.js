// The panel that shows the pack's live displays on the Optimize Motion Embedding node: the motion preview
// (motion_preview.js, hidden until the first one arrives) above the loss curve (loss_curve.js).
// It is one DOM widget (node.addDOMWidget, the frontend's documented way to put HTML on a node), not drawing in
// onDrawForeground: the frontend's "Nodes 2.0" mode (Vue nodes) never calls onDrawForeground, and mounts a DOM
// widget's element inside its own node, while the classic canvas lays the same element over the canvas. The
// animated preview is an <img>, which plays by itself, so nothing redraws on a timer; the curve's <canvas> is
// redrawn when a loss event arrives or the panel changes size.
// An ES module, evaluated once however many extensions import it; it registers no extension of its own.

export const CURVE_HEIGHT = 120;
export const PREVIEW_HEIGHT = 220;
const GAP = 6;
const WIDGET_NAME = "reenact_live_panel";

function element(tag, className, style) {
  const made = document.createElement(tag);
  made.className = className;
  Object.assign(made.style, style);
  return made;
}

// Height the panel needs: the curve, and the preview once one is shown.
function panelHeight(panel) {
  return CURVE_HEIGHT + (panel.preview.hidden ? 0 : PREVIEW_HEIGHT + GAP);
}

// The node's panel, made on first use: {root, preview, image, caption, curve, widget, redraw}.
// `redraw` is set by loss_curve.js; the panel calls it whenever the curve's size changes.
export function livePanel(node) {
  if (node.reenactPanel) return node.reenactPanel;
  const root = element("div", "reenact-live-panel", {
    display: "flex", flexDirection: "column", gap: `${GAP}px`, width: "100%", boxSizing: "border-box",
    minHeight: `${CURVE_HEIGHT}px`, overflow: "hidden",
  });
  const preview = element("figure", "reenact-motion-preview", {
    // Its full height where the node gives the panel room (Nodes 2.0 sizes the panel to its content); it gives way
    // first where the canvas gives the widget less than that, so the curve below is never pushed out of the node.
    margin: "0", height: `${PREVIEW_HEIGHT}px`, flex: "0 1 auto", minHeight: "0", display: "flex",
    flexDirection: "column",
    alignItems: "center", justifyContent: "center", background: "#1b1b1b", overflow: "hidden",
  });
  preview.hidden = true;
  preview.style.display = "none";
  const image = element("img", "reenact-motion-preview-image", {
    maxWidth: "100%", maxHeight: `${PREVIEW_HEIGHT - 18}px`, flex: "1 1 auto", objectFit: "contain",
    minHeight: "0", imageRendering: "auto",
  });
  image.alt = "motion preview";
  const caption = element("figcaption", "reenact-motion-preview-caption", {
    font: "11px sans-serif", color: "#aaa", height: "16px", lineHeight: "16px",
  });
  preview.append(image, caption);
  const curve = element("canvas", "reenact-loss-curve", {
    display: "block", width: "100%", height: `${CURVE_HEIGHT}px`, flex: "0 0 auto",
  });
  root.append(preview, curve);
  const panel = { root, preview, image, caption, curve, widget: null, redraw: null };
  panel.widget = node.addDOMWidget(WIDGET_NAME, "reenact-live-panel", root, {
    serialize: false, // nothing to save: the workflow's widgets_values stay the node's inputs only
    hideOnZoom: false,
    getMinHeight: () => panelHeight(panel),
    getMaxHeight: () => panelHeight(panel),
  });
  panel.widget.serialize = false;
  // Where the frontend names the widget (App mode's input list, the properties panel), a name people can read.
  panel.widget.label = "Motion preview and loss curve";
  new ResizeObserver(() => panel.redraw?.()).observe(curve);
  node.reenactPanel = panel;
  return panel;
}

// Shows the preview part of the panel (first preview) and makes the node tall enough for it.
export function showPreview(node, panel) {
  if (!panel.preview.hidden) return;
  panel.preview.hidden = false;
  panel.preview.style.display = "flex";
  node.setSize([node.size[0], Math.max(node.size[1], node.computeSize()[1])]);
  node.setDirtyCanvas(true, true);
}
