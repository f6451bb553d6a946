"""Draw the Templates-browser thumbnail of each bundled workflow: example_workflows/<name>.jpg next to <name>.json.

The frontend shows a custom node's template `<name>` with the picture `/api/workflow_templates/<pack>/<name>.jpg`
(a square card), so each thumbnail is a 512x512 JPEG: the workflow's own groups, nodes and links drawn from its
JSON, and a caption. No server is needed; scripts/build_workflows.py calls this after writing the workflows.
Run: python scripts/build_thumbnails.py   (redraws the thumbnails of the workflows in example_workflows/)
"""
import argparse
import glob
import json
import os

from PIL import Image, ImageColor, ImageDraw, ImageFont

PACK_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_WORKFLOWS = os.path.join(PACK_ROOT, "example_workflows")

SIZE = 512           # pixels of the saved square thumbnail
SUPERSAMPLE = 2      # drawn at twice the size, then reduced: smooth lines and text
QUALITY = 85         # JPEG quality; a thumbnail is some 30-60 KB
CAPTIONS = {"reenact_invert_motion": "Learn a motion from a video",
            "reenact_transfer_motion": "Reenact a saved motion on an image",
            "reenact_invert_and_transfer": "Learn a motion, reenact it on an image"}

# The frontend's dark palette (its litegraph defaults and node_slot colours); other socket types get LINK_DEFAULT.
BACKGROUND, NODE_TITLE, NODE_BODY, NODE_TEXT = "#222222", "#333333", "#353535", "#dddddd"
LINK_COLORS = {"MODEL": "#B39DDB", "CLIP_VISION": "#A8DADC", "VAE": "#FF6E6E", "IMAGE": "#64B5F6",
               "LATENT": "#FF9CF9", "CONDITIONING": "#FFA931", "MASK": "#81C784"}
LINK_DEFAULT = "#9fb4c8"
TITLE_HEIGHT, SLOT_HEIGHT = 30, 20   # litegraph's NODE_TITLE_HEIGHT and NODE_SLOT_HEIGHT, in graph units


def font(pixels):
    """Pillow's own scalable font, so the picture does not depend on the machine's fonts."""
    try:
        return ImageFont.load_default(size=pixels)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: a fixed bitmap font
        return ImageFont.load_default()


def fitted(draw, text, pixels, width, minimum=8):
    """The largest font up to `pixels` that fits `text` in `width`, and the text (cut with … when even the
    smallest font is too wide)."""
    while pixels > minimum and draw.textlength(text, font=font(pixels)) > width:
        pixels -= 1
    face = font(pixels)
    while len(text) > 1 and draw.textlength(text, font=face) > width:
        text = text[:-2] + "…"
    return face, text


def label_lines(draw, text, pixels, width, readable=22):
    """A group title on one line, or on two when one line would need a font below `readable` pixels."""
    face, line = fitted(draw, text, pixels, width, minimum=readable)
    words = text.split()
    if draw.textlength(text, font=face) <= width or len(words) < 2:
        return fitted(draw, text, pixels, width, minimum=14)[0], [line]
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    lines = min(splits, key=lambda pair: max(draw.textlength(part, font=face) for part in pair))
    face = min((fitted(draw, part, pixels, width, minimum=14)[0] for part in lines), key=lambda f: f.size)
    return face, [fitted(draw, part, face.size, width, minimum=face.size)[1] for part in lines]


def blend(color, background, alpha):
    a, b = ImageColor.getrgb(color)[:3], ImageColor.getrgb(background)[:3]
    return tuple(round(alpha * x + (1 - alpha) * y) for x, y in zip(a, b))


def bezier(start, end, steps=24):
    (x0, y0), (x1, y1) = start, end
    d = max(abs(x1 - x0) * 0.5, 40)
    points = []
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        points.append((u ** 3 * x0 + 3 * u * u * t * (x0 + d) + 3 * u * t * t * (x1 - d) + t ** 3 * x1,
                       u ** 3 * y0 + 3 * u * u * t * y0 + 3 * u * t * t * y1 + t ** 3 * y1))
    return points


def render(workflow, caption):
    """The workflow's groups, links and nodes, fitted above a caption band, as a SIZE x SIZE RGB image."""
    full = SIZE * SUPERSAMPLE
    band = round(full * 0.16)
    image = Image.new("RGB", (full, full), BACKGROUND)
    draw = ImageDraw.Draw(image)

    nodes = {n["id"]: n for n in workflow["nodes"]}
    boxes = [g["bounding"] for g in workflow.get("groups", [])]
    boxes += [[n["pos"][0], n["pos"][1] - TITLE_HEIGHT, n["size"][0], n["size"][1] + TITLE_HEIGHT]
              for n in nodes.values()]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    margin = full * 0.04
    scale = min((full - 2 * margin) / (x1 - x0), (full - band - 2 * margin) / (y1 - y0))
    left = (full - scale * (x1 - x0)) / 2
    top = (full - band - scale * (y1 - y0)) / 2

    def at(x, y):
        return left + (x - x0) * scale, top + (y - y0) * scale

    for group in workflow.get("groups", []):
        gx, gy, gw, gh = group["bounding"]
        (ax, ay), (bx, by) = at(gx, gy), at(gx + gw, gy + gh)
        draw.rectangle((ax, ay, bx, by), fill=blend(group["color"], BACKGROUND, 0.35),
                       outline=blend(group["color"], BACKGROUND, 0.8), width=2)

    def slot(node, side, index):
        x = node["pos"][0] + (node["size"][0] if side == "out" else 0)
        return at(x, node["pos"][1] + SLOT_HEIGHT * (index + 0.7))

    for _, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        points = bezier(slot(nodes[origin], "out", origin_slot), slot(nodes[target], "in", target_slot))
        draw.line(points, fill=LINK_COLORS.get(kind, LINK_DEFAULT), width=max(2, round(4 * scale)))

    for node in sorted(nodes.values(), key=lambda n: n.get("order", 0)):
        (ax, ay) = at(node["pos"][0], node["pos"][1] - TITLE_HEIGHT)
        (bx, by) = at(node["pos"][0] + node["size"][0], node["pos"][1] + node["size"][1])
        (_, ty) = at(0, node["pos"][1])
        radius = max(2, round(8 * scale))
        draw.rounded_rectangle((ax, ay, bx, by), radius, fill=node.get("bgcolor", NODE_BODY),
                               outline="#111111", width=1)
        draw.rounded_rectangle((ax, ay, bx, ty), radius, fill=node.get("color", NODE_TITLE),
                               corners=(True, True, False, False))

    # Node titles would be a few pixels high; the groups' titles, large on a dark label, say what each part does.
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    labels = ImageDraw.Draw(overlay)
    for group in workflow.get("groups", []):
        gx, gy, gw, gh = group["bounding"]
        (ax, ay), (bx, by) = at(gx, gy), at(gx + gw, gy + gh)
        face, lines = label_lines(labels, group["title"], round(full * 0.036), bx - ax - 16)
        cx, cy = (ax + bx) / 2, ay + min(by - ay, full * 0.3) / 2
        step = face.size * 1.2
        ys = [cy + (i - (len(lines) - 1) / 2) * step for i in range(len(lines))]
        boxes = [labels.textbbox((cx, y), line, font=face, anchor="mm") for line, y in zip(lines, ys)]
        labels.rounded_rectangle((min(b[0] for b in boxes) - 6, boxes[0][1] - 5, max(b[2] for b in boxes) + 6,
                                  boxes[-1][3] + 5), 6, fill=(12, 12, 12, 215))
        for line, y in zip(lines, ys):
            labels.text((cx, y), line, font=face, fill=(255, 255, 255, 255), anchor="mm")
    image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    draw = ImageDraw.Draw(image)

    draw.rectangle((0, full - band, full, full), fill="#141414")
    face, text = fitted(draw, caption, round(band * 0.34), full - 2 * margin)
    draw.text((margin, full - band * 0.62), text, font=face, fill="#ffffff", anchor="lm")
    draw.text((margin, full - band * 0.24), "Reenact Anything", font=font(round(band * 0.2)), fill="#a0a0a0",
              anchor="lm")
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def thumbnail_path(workflow_path):
    return os.path.splitext(workflow_path)[0] + ".jpg"


def write_thumbnail(workflow_path):
    """Draw `<name>.json`'s thumbnail as `<name>.jpg` beside it; returns the picture's path."""
    with open(workflow_path) as f:
        workflow = json.load(f)
    name = os.path.splitext(os.path.basename(workflow_path))[0]
    path = thumbnail_path(workflow_path)
    render(workflow, CAPTIONS.get(name, name.replace("_", " "))).save(path, "JPEG", quality=QUALITY,
                                                                      optimize=True)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folder", default=EXAMPLE_WORKFLOWS)
    args = parser.parse_args()
    for workflow_path in sorted(glob.glob(os.path.join(args.folder, "*.json"))):
        print("wrote", write_thumbnail(workflow_path))


if __name__ == "__main__":
    main()
