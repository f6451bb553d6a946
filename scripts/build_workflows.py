"""Regenerate the bundled UI-format workflows in example_workflows/ from a short description of each graph.

Widget order and socket slots come from the server's /object_info, so a changed node schema gives a correct file.
example_workflows/ is the folder ComfyUI serves as this pack's templates (Templates browser); each workflow gets
its thumbnail `<name>.jpg` there too (scripts/build_thumbnails.py).
Run: python scripts/build_workflows.py   (starts a temporary ComfyUI on loopback with this pack installed)
"""
import argparse
import json
import os
import sys
import tempfile
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a script: the pack's own packages

from reenact_cli.comfy_server import ComfyServer  # noqa: E402
from reenact_core import svd_defaults  # noqa: E402
from reenact_cli.locate import PACK_ROOT, find_comfyui_or_exit  # noqa: E402
from reenact_cli.workflow_api import (default_value, is_widget, ordered_inputs, trailing_widget_values,  # noqa: E402
                                      widget_layout)
from build_thumbnails import write_thumbnail  # noqa: E402  (scripts/, this script's own folder)

CHECKPOINT = "svd_xt.safetensors"
# The checkpoint loader's properties.models: the frontend offers the download of the one whose name is the
# loader's widget value when ComfyUI/models/<directory>/ lacks it (only huggingface.co and civitai.com URLs of
# .safetensors files). Both Hugging Face repositories are gated: log in and accept the licence on the model page.
CHECKPOINT_MODELS = [
    {"name": "svd_xt.safetensors",
     "url": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt/resolve/main/svd_xt.safetensors",
     "directory": "checkpoints"},
    {"name": "svd.safetensors",
     "url": "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid/resolve/main/svd.safetensors",
     "directory": "checkpoints"},
]
EMBEDDING_NAME = "motion/reenact_00001.safetensors"
EMBEDDING_NOTE = """**Motion embedding**

Pick a `.safetensors` file from `ComfyUI/models/motion_embeddings/`, made by *Save Motion Embedding* (the
*invert* workflow) or shared by someone else. Press **R** after adding files."""

CHECKPOINT_NOTE = f"""**Which checkpoint**

This graph needs Stable Video Diffusion, image-to-video:

- `{CHECKPOINT}` (25 frames): https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt
- or `svd.safetensors` (14 frames): https://huggingface.co/stabilityai/stable-video-diffusion-img2vid

Both repositories are gated: log in to Hugging Face and accept the licence on the model page first. Put the file
in `ComfyUI/models/checkpoints/`, press **R** to refresh, and pick it in *Image Only Checkpoint Loader*. The loader
gives the MODEL, the CLIP_VISION and the VAE this pack needs."""

REFERENCE_NOTE = """**Reference video: the motion to learn**

Upload an mp4/webm/gif/mov (or put it in `ComfyUI/input/`). *Load Motion Reference* picks `frame_count` frames
from `start_frame`, every `stride`-th frame (or resampled to `target_fps`), and fits them to width x height
(multiples of 64). Use the size and frame count you will generate at: 1024x576 and 14 frames for SVD."""

OPTIMIZE_NOTE = """**Learn the motion (motion-textual inversion)**

*Inflate CLIP Embedding* starts the embedding from the reference's CLIP image embeddings: one row of tokens per
frame. *Optimize Motion Embedding* then trains only those tokens against the frozen SVD model; the MODEL is not
changed. The loss curve draws live on the node and as an image at the end.

`steps` is the most it takes: with `stop_when_learned` on it ends once the held-out loss (the second series on the curve) stops improving. Press **Cancel** at any time; it stops within a step.
`gradient_checkpointing = blocks` saves VRAM."""

SAVE_NOTE = """**Save**

The embedding goes to `ComfyUI/models/motion_embeddings/<prefix>_00001.safetensors` with its settings in the
file's metadata. An existing file is never overwritten. Share the file; *Load Motion Embedding* reads it back."""

TRANSFER_NOTE = """**Reenact: apply the motion to a new image**

*SVD_img2vid_Conditioning* encodes the target image as usual. *Apply Motion Embedding* swaps SVD's single image
token for the embedding's per-frame motion tokens (and, by default, the fps and motion bucket it was learned
with). Then ComfyUI's own KSampler, VAE Decode and Save Video do the rest. Use the frame count the embedding was
learned at for the most faithful motion; other counts are resampled."""


NODE_WIDTH, COLUMN, GAP = 320, 380, 40
EXTRA_HEIGHT = {"OptimizeMotionEmbedding": 130}  # the live loss-curve panel (web/js/loss_curve.js)


def node_size(class_type, definition, widget_count):
    """Generous enough for the frontend's layout (title 30, 20 per socket row, 24 per widget)."""
    sockets = max(len(definition.get("output", [])),
                  sum(1 for _, spec in ordered_inputs(definition) if not is_widget(spec)))
    return [NODE_WIDTH, 40 + 22 * sockets + 26 * widget_count + EXTRA_HEIGHT.get(class_type, 0)]


def widget_value(name, spec, overrides):
    """The value a new node's widget gets: the one asked for (taken out of `overrides`), else the frontend's."""
    return overrides.pop(name) if name in overrides else default_value(spec)


def output_slot(node, wanted):
    """The slot of the output called `wanted`, else of the one output of type `wanted`: ComfyUIs differ in what
    they call a V3 output without a display name (0.3.64 its type, "IMAGE"; newer ones its id, "frames")."""
    outputs = node["outputs"]
    named = [i for i, o in enumerate(outputs) if o["name"] == wanted]
    typed = [i for i, o in enumerate(outputs) if o["type"] == wanted]
    found = named or typed
    if len(found) != 1:
        raise KeyError(f"{node['type']} has no single output {wanted!r}: {[o['name'] for o in outputs]}")
    return found[0]


def below(node, gap=GAP):
    return (node["pos"][0], node["pos"][1] + node["size"][1] + gap)


class GraphBuilder:
    """Collects nodes, links, notes and groups; writes the frontend's version-0.4 JSON."""

    def __init__(self, object_info):
        self.info = object_info
        self.nodes, self.links, self.groups = [], [], []
        self.by_key = {}

    def node(self, key, class_type, pos, title=None, **widgets):
        """A node of `class_type` whose widgets hold `widgets` (dotted names for a DynamicCombo's own inputs), else
        each input's default, else its first choice."""
        definition = self.info[class_type]
        chosen = {}

        def choose(name, spec, _position):
            chosen[name] = widget_value(name, spec, widgets)
            return chosen[name]

        layout = widget_layout(ordered_inputs(definition), choose)
        values = []
        for name, spec in layout:
            if name is None:  # the seed's control_after_generate
                values.append("fixed")
            else:
                values.append(chosen[name] if name in chosen else widget_value(name, spec, widgets))
        values += ["image"] * sum(trailing_widget_values(spec) for _, spec in ordered_inputs(definition)
                                  if is_widget(spec))  # the upload button's value, which the frontend puts last
        inputs = []
        for name, spec in ordered_inputs(definition):
            if not is_widget(spec):
                socket = {"name": name, "type": spec[0] if isinstance(spec[0], str) else "COMBO", "link": None}
                if name in definition["input"].get("optional", {}):
                    socket["shape"] = 7
                inputs.append(socket)
        if widgets:
            raise KeyError(f"{class_type} has no widgets {sorted(widgets)}")
        outputs = [{"name": name, "type": kind, "links": [], "slot_index": i}
                   for i, (name, kind) in enumerate(zip(definition["output_name"], definition["output"]))]
        node = {"id": len(self.nodes) + 1, "type": class_type, "pos": list(pos),
                "size": node_size(class_type, definition, len(values)), "flags": {}, "order": len(self.nodes), "mode": 0,
                "inputs": inputs, "outputs": outputs, "properties": {"Node name for S&R": class_type},
                "widgets_values": values}
        if title:
            node["title"] = title
        self.nodes.append(node)
        self.by_key[key] = node
        return node

    def note(self, text, pos, width=NODE_WIDTH, height=220, title="Note"):
        node = {"id": len(self.nodes) + 1, "type": "MarkdownNote", "pos": list(pos), "size": [width, height],
                "flags": {}, "order": len(self.nodes), "mode": 0, "inputs": [], "outputs": [], "title": title,
                "properties": {}, "widgets_values": [text], "color": "#432", "bgcolor": "#653"}
        self.nodes.append(node)
        return node

    def link_all(self, *links):
        """Each (source node, output name, target node, input name), in order."""
        for link in links:
            self.link(*link)

    def link(self, source_key, output_name, target_key, input_name):
        source, target = self.by_key[source_key], self.by_key[target_key]
        slot = output_slot(source, output_name)
        target_slot = next(i for i, s in enumerate(target["inputs"]) if s["name"] == input_name)
        link_id = len(self.links) + 1
        kind = source["outputs"][slot]["type"]
        self.links.append([link_id, source["id"], slot, target["id"], target_slot, kind])
        source["outputs"][slot]["links"].append(link_id)
        target["inputs"][target_slot]["link"] = link_id

    def group(self, title, members, color="#3f789e", pad=30):
        boxes = [(n["pos"][0], n["pos"][1], n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1]) for n in members]
        x0, y0 = min(b[0] for b in boxes) - pad, min(b[1] for b in boxes) - pad - 40
        x1, y1 = max(b[2] for b in boxes) + pad, max(b[3] for b in boxes) + pad
        self.groups.append({"id": len(self.groups) + 1, "title": title, "bounding": [x0, y0, x1 - x0, y1 - y0],
                            "color": color, "font_size": 24, "flags": {}})

    def bottom(self):
        return max(g["bounding"][1] + g["bounding"][3] for g in self.groups)

    def workflow(self):
        for node in self.nodes:
            for output in node["outputs"]:
                output["links"] = output["links"] or None
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([n["type"] for n in self.nodes]))),
                "revision": 0, "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": self.nodes, "links": self.links, "groups": self.groups, "config": {},
                "extra": {"ds": {"scale": 0.6, "offset": [40, 80]}}, "version": 0.4}


def add_loader(g, x=0, y=0):
    loader = g.node("ckpt", "ImageOnlyCheckpointLoader", (x, y + 60), ckpt_name=CHECKPOINT)
    loader["properties"]["models"] = [dict(model) for model in CHECKPOINT_MODELS]
    note = g.note(CHECKPOINT_NOTE, below(loader), height=330, title="Read me: checkpoint")
    g.group("1. Load SVD (image to video)", [loader, note])


def add_inversion(g, x, y):
    ref = g.node("ref", "LoadMotionReference", (x, y + 60), video="reenact_reference.mp4")
    ref_note = g.note(REFERENCE_NOTE, below(ref), height=220, title="Read me: reference")
    g.group("2. Reference video", [ref, ref_note], color="#8a8")
    inflate = g.node("inflate", "InflateCLIPEmbedding", (x + COLUMN, y + 60))
    opt = g.node("opt", "OptimizeMotionEmbedding", below(inflate))
    curve = g.node("curve", "PreviewImage", (x + 2 * COLUMN, y + 60), title="Loss curve")
    curve["size"][1] = 300
    opt_note = g.note(OPTIMIZE_NOTE, below(curve), height=260, title="Read me: learning")
    g.group("3. Learn the motion", [inflate, opt, curve, opt_note], color="#a1309b")
    g.link_all(
        ("ckpt", "CLIP_VISION", "inflate", "clip_vision"),
        ("ref", "IMAGE", "inflate", "images"),
        ("ckpt", "MODEL", "opt", "model"),
        ("ckpt", "VAE", "opt", "vae"),
        ("ref", "IMAGE", "opt", "reference"),
        ("inflate", "MOTION_EMBEDDING", "opt", "init_embedding"),
        ("ref", "STRING", "opt", "source_name"),
        ("opt", "IMAGE", "curve", "images"),
    )


def add_save(g, x, y):
    save = g.node("save", "SaveMotionEmbedding", (x, y + 60))
    note = g.note(SAVE_NOTE, below(save), height=200, title="Read me: save")
    g.group("4. Save the embedding", [save, note], color="#b58b2a")
    g.link("opt", "MOTION_EMBEDDING", "save", "motion_embedding")


def add_transfer(g, x, y, embedding_source):
    target = g.node("target", "LoadImage", (x, y + 60), image="reenact_target.png")
    target["size"][1] = 320
    note = g.note(TRANSFER_NOTE, below(target), height=260, title="Read me: reenact")
    cond = g.node("cond", "SVD_img2vid_Conditioning", (x + COLUMN, y + 60))
    apply = g.node("apply", "ApplyMotionEmbedding", below(cond))
    cfg = g.node("cfg", "VideoLinearCFGGuidance", (x + 2 * COLUMN, y + 60))
    sampler = g.node("sampler", "KSampler", below(cfg), steps=svd_defaults.SAMPLER_STEPS, cfg=2.5, sampler_name="euler",
                     scheduler="karras")
    decode = g.node("decode", "VAEDecode", (x + 3 * COLUMN, y + 60))
    video = g.node("video", "CreateVideo", below(decode), fps=8.0)
    save = g.node("save_video", "SaveVideo", below(video), filename_prefix="video/reenact")
    g.group("5. Reenact the motion on a target image", [target, cond, apply, cfg, sampler, decode, video, save, note],
            color="#335")
    g.link_all(
        ("ckpt", "CLIP_VISION", "cond", "clip_vision"),
        ("target", "IMAGE", "cond", "init_image"),
        ("ckpt", "VAE", "cond", "vae"),
        ("cond", "positive", "apply", "positive"),
        ("cond", "negative", "apply", "negative"),
        (*embedding_source, "apply", "motion_embedding"),
        ("cond", "latent", "apply", "latent"),
        ("ckpt", "MODEL", "cfg", "model"),
        ("cfg", "MODEL", "sampler", "model"),
        ("apply", "positive", "sampler", "positive"),
        ("apply", "negative", "sampler", "negative"),
        ("cond", "latent", "sampler", "latent_image"),
        ("sampler", "LATENT", "decode", "samples"),
        ("ckpt", "VAE", "decode", "vae"),
        ("decode", "IMAGE", "video", "images"),
        ("video", "VIDEO", "save_video", "video"),
    )


def invert_workflow(info):
    g = GraphBuilder(info)
    add_loader(g)
    add_inversion(g, COLUMN + 60, 0)
    add_save(g, 4 * COLUMN + 120, 0)
    return g.workflow()


def transfer_workflow(info):
    g = GraphBuilder(info)
    add_loader(g)
    embedding = g.node("load_embedding", "LoadMotionEmbedding", (COLUMN + 60, 60), embedding_name=EMBEDDING_NAME)
    note = g.note(EMBEDDING_NOTE, (2 * COLUMN + 60, 60), height=160, title="Read me: motion embedding")
    g.group("2. Motion embedding", [embedding, note], color="#b58b2a")
    add_transfer(g, COLUMN + 60, g.bottom() + 80, ("load_embedding", "MOTION_EMBEDDING"))
    return g.workflow()


def invert_and_transfer_workflow(info):
    g = GraphBuilder(info)
    add_loader(g)
    add_inversion(g, COLUMN + 60, 0)
    add_save(g, 4 * COLUMN + 120, 0)
    add_transfer(g, COLUMN + 60, g.bottom() + 80, ("opt", "MOTION_EMBEDDING"))
    return g.workflow()


WORKFLOWS = {"reenact_invert_motion.json": invert_workflow,
             "reenact_transfer_motion.json": transfer_workflow,
             "reenact_invert_and_transfer.json": invert_and_transfer_workflow}


def fetch_object_info(url):
    with urllib.request.urlopen(f"{url}/object_info", timeout=60) as r:
        return json.load(r)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", help="URL of a running ComfyUI with this pack; default: start one")
    parser.add_argument("--out", default=os.path.join(PACK_ROOT, "example_workflows"))
    args = parser.parse_args()
    if args.server:
        info = fetch_object_info(args.server)
    else:
        with tempfile.TemporaryDirectory() as base:
            os.makedirs(os.path.join(base, "custom_nodes"))
            os.symlink(PACK_ROOT, os.path.join(base, "custom_nodes", "reenact-anything"))
            with ComfyServer(find_comfyui_or_exit(), base) as server:
                info = fetch_object_info(server.url)
    os.makedirs(args.out, exist_ok=True)
    built = {name: build(info) for name, build in WORKFLOWS.items()}  # all built before any file is replaced
    for name, workflow in built.items():
        path = os.path.join(args.out, name)
        with open(path, "w") as f:
            json.dump(workflow, f, indent=1)
            f.write("\n")
        print("wrote", path)
        print("wrote", write_thumbnail(path))


if __name__ == "__main__":
    main()
