"""Turn a UI-format workflow (what users drag onto the canvas) into the API format `/prompt` takes.

The UI format stores widget values as a flat list per node, in the order of the node's inputs as `/object_info`
reports them, and stores links separately. This mirrors what the ComfyUI frontend does in `graphToPrompt`: the
browser test compares the two on every bundled workflow.
"""
import copy

# Frontend-only nodes: they have no Python class and never reach the server.
FRONTEND_ONLY = {"Note", "MarkdownNote"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "file_upload")
SOCKET_ONLY_TYPES = {"IMAGE", "LATENT", "MODEL", "VAE", "CLIP", "CLIP_VISION", "CONDITIONING", "MASK", "VIDEO",
                     "AUDIO"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
ACTIVE_MODE = 0


class WorkflowError(ValueError):
    pass


def is_widget(spec) -> bool:
    """An input the frontend draws as a widget (and so stores in widgets_values)."""
    kind = spec[0]
    if spec_options(spec).get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def spec_options(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def extra_widget_values(spec) -> int:
    """Widgets the frontend puts right after an input: the seed's control_after_generate combo."""
    return int(bool(spec_options(spec).get("control_after_generate")))


def trailing_widget_values(spec) -> int:
    """Widgets the frontend appends after all others: the upload button of an upload combo."""
    return int(any(spec_options(spec).get(flag) for flag in UPLOAD_FLAGS))


def ordered_inputs(definition) -> list[tuple[str, list]]:
    specs = {**definition["input"].get("required", {}), **definition["input"].get("optional", {})}
    order = definition.get("input_order", {})
    names = order.get("required", []) + order.get("optional", []) if order else list(specs)
    return [(name, specs[name]) for name in names]


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """API prompt {node_id: {class_type, inputs, _meta}} for the active nodes of a UI workflow."""
    links = {link[0]: link for link in workflow.get("links", [])}
    nodes = {node["id"]: node for node in workflow["nodes"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY or node.get("mode", ACTIVE_MODE) != ACTIVE_MODE:
            continue
        definition = object_info.get(node["type"])
        if definition is None:
            raise WorkflowError(f"node {node['id']} needs the node type {node['type']!r}, which this server does "
                                f"not have (is its custom node pack installed?)")
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        values = list(node.get("widgets_values", []))
        inputs, cursor = {}, 0
        for name, spec in ordered_inputs(definition):
            if is_widget(spec):
                if cursor < len(values):
                    inputs[name] = values[cursor]
                cursor += 1 + extra_widget_values(spec)
            if name in linked:
                link = links[linked[name]]
                source = nodes[link[1]]
                if source.get("mode", ACTIVE_MODE) != ACTIVE_MODE:
                    raise WorkflowError(f"node {node['id']} reads {name!r} from a muted or bypassed node")
                inputs[name] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": node.get("title") or definition.get("display_name")}}
    return prompt


def nodes_of_type(prompt: dict, class_type: str) -> list[dict]:
    return [node for node in prompt.values() if node["class_type"] == class_type]


def patched(prompt: dict, changes: dict[str, dict]) -> dict:
    """A copy of `prompt` with {class_type: {input: value}} applied to every node of that type; unknown inputs
    are refused so a renamed input cannot be patched silently into nothing."""
    result = copy.deepcopy(prompt)
    for class_type, values in changes.items():
        targets = nodes_of_type(result, class_type)
        if not targets:
            raise WorkflowError(f"the workflow has no {class_type} node to patch")
        for node in targets:
            for name, value in values.items():
                if name not in node["inputs"]:
                    raise WorkflowError(f"{class_type} has no widget input {name!r}")
                node["inputs"][name] = value
    return result
