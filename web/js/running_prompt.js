// What the pack's live displays on the Optimize Motion Embedding node share (loss_curve.js, motion_preview.js):
// finding the node an event names, following only the running prompt, and adding to the node's callbacks.
// An ES module, evaluated once however many extensions import it; it registers no extension of its own.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

// Adds `callback` to object[property] rather than replacing it (the idea of ComfyUI-VideoHelperSuite's
// chainCallback): whatever was there runs first, then callback(thatResult, ...arguments) with the same `this`;
// the callback's own return value, if it gives one, becomes the result.
export function chainCallback(object, property, callback) {
  const original = object[property];
  object[property] = function (...args) {
    const result = original?.apply(this, args);
    const own = callback.call(this, result, ...args);
    return own === undefined ? result : own;
  };
}

// The node an execution id names, walking into subgraphs: "12:5" is node 5 of the subgraph that node 12 of
// the root graph instantiates (the idea of ComfyUI-VideoHelperSuite's getNodeById).
export function nodeByExecutionId(executionId, graph = app.graph) {
  let node = null;
  for (const id of String(executionId).split(":")) {
    node = graph?.getNodeById(id) ?? graph?.getNodeById(Number(id)) ?? null;
    graph = node?.subgraph;
  }
  return node;
}

// The prompt this page saw start (ComfyUI's execution_start) and not yet finish; null when it knows of none,
// e.g. after a reload in the middle of a run: then the events' own prompt is followed.
let runningPrompt = null;

function promptStarted({ detail }) {
  runningPrompt = detail?.prompt_id ?? null;
}

function promptEnded({ detail }) {
  if (detail?.prompt_id === runningPrompt) runningPrompt = null;
}

// Whether an event of `promptId` belongs to the prompt that is running (any prompt, when none is known).
export function isRunningPrompt(promptId) {
  return runningPrompt === null || promptId === runningPrompt;
}

api.addEventListener("execution_start", promptStarted);
for (const end of ["execution_success", "execution_error", "execution_interrupted"]) {
  api.addEventListener(end, promptEnded);
}

