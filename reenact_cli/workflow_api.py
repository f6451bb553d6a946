"""Turn a UI-format workflow (what users drag onto the canvas) into the API format `/prompt` takes.

The UI format stores widget values as a flat list per node, in the order of the node's inputs as `/object_info`
reports them, and stores links separately. This mirrors what the ComfyUI frontend does in `graphToPrompt`: the
browser test compares the two on every bundled workflow.

A DynamicCombo input (V3 `io.DynamicCombo`, type COMFY_DYNAMICCOMBO_V3 in /object_info; e.g. Save Video's `format` in
newer ComfyUIs) is a combo whose selected option brings its own inputs: the frontend puts their widgets right after
the combo's, named `<combo>.<input>` (nested: `format.codec.encoding`), and sends each under that dotted name. Which
inputs exist so depends on the values; ComfyUIs without DynamicCombo never report that type, so nothing changes
for them.
"""
import copy

# Frontend-only nodes: they have no Python class and never reach the server.
FRONTEND_ONLY = {"Note", "MarkdownNote"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "file_upload")
SOCKET_ONLY_TYPES = {"IMAGE", "LATENT", "MODEL", "VAE", "CLIP", "CLIP_VISION", "CONDITIONING", "MASK", "VIDEO",
                     "AUDIO"}
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", DYNAMIC_COMBO}
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


def is_dynamic_combo(spec) -> bool:
    return spec[0] == DYNAMIC_COMBO


def dynamic_combo_keys(spec) -> list[str]:
    """The option names of a DynamicCombo, in the order the frontend lists them."""
    return [option["key"] for option in spec_options(spec).get("options", [])]


def option_inputs(spec, key) -> list[tuple[str, list]]:
    """The inputs a DynamicCombo's option `key` brings, required first (as the frontend adds them); none for an
    unknown key."""
    for option in spec_options(spec).get("options", []):
        if option["key"] == key:
            inputs = option.get("inputs", {})
            return [*inputs.get("required", {}).items(), *inputs.get("optional", {}).items()]
    return []


def widget_layout(inputs, choose, prefix="", layout=None) -> list[tuple[str | None, list | None]]:
    """(name, spec) for each position of a node's widgets_values, in the frontend's order: an input's widget, then
    its extra values (name None: the seed's control_after_generate), then for a DynamicCombo the widgets of the
    option choose(name, spec, position) picks, with dotted names. Upload buttons, appended after all, are not
    listed (trailing_widget_values counts them)."""
    layout = [] if layout is None else layout
    for name, spec in inputs:
        if not is_widget(spec):
            continue
        full = prefix + name
        position = len(layout)
        layout.append((full, spec))
        layout.extend([(None, None)] * extra_widget_values(spec))
        if is_dynamic_combo(spec):
            widget_layout(option_inputs(spec, choose(full, spec, position)), choose, f"{full}.", layout)
    return layout


def default_value(spec):
    """What the frontend gives a new widget: the input's default, else its first choice (a DynamicCombo's first
    option)."""
    options = spec_options(spec)
    if "default" in options:
        return options["default"]
    if is_dynamic_combo(spec):
        keys = dynamic_combo_keys(spec)
        return keys[0] if keys else ""
    choices = spec[0] if isinstance(spec[0], list) else options.get("options", [""])
    return choices[0] if choices else ""


def fresh_node_inputs(definition) -> dict:
    """A new node's widget values, as the frontend fills them in from the node's definition (/object_info's entry,
    or a node class's INPUT_TYPES() as {"input": ...}). Not for DynamicCombo inputs, whose sub-inputs it leaves out."""
    return {name: default_value(spec) for name, spec in ordered_inputs(definition) if is_widget(spec)}


def node_widget_layout(definition, values) -> list[tuple[str | None, list | None]]:
    """widget_layout of a saved node: each DynamicCombo expands the option its stored value names."""
    def stored(_name, spec, position):
        return values[position] if position < len(values) else default_value(spec)
    return widget_layout(ordered_inputs(definition), stored)


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
        values = list(node.get("widgets_values", []))
        inputs = {}
        # A workflow saved before an input existed lacks its value: the frontend gives the input's default.
        for position, (name, spec) in enumerate(node_widget_layout(definition, values)):
            if name is not None:
                inputs[name] = values[position] if position < len(values) else default_value(spec)
        for slot in node.get("inputs", []):  # a link overrides the widget of the same name
            if slot.get("link") is None:
                continue
            link = links[slot["link"]]
            if nodes[link[1]].get("mode", ACTIVE_MODE) != ACTIVE_MODE:
                raise WorkflowError(f"node {node['id']} reads {slot['name']!r} from a muted or bypassed node")
            inputs[slot["name"]] = [str(link[1]), link[2]]
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
