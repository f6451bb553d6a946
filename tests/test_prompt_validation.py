"""ComfyUI's own prompt validation guards every widget input of every node of the pack.

The cases come from the nodes' schemas: for each widget input, a value below its min, above its max, outside
its options, or NaN for a float. Each is sent through ComfyUI's `execution.validate_inputs` (what
`validate_prompt` runs for each node of a queued prompt, before anything executes) in an otherwise valid
prompt, and must be rejected with the input named. A new input is covered without a new test.

The linked inputs come from ComfyUI's core loader nodes pointing at files in temporary folders, so the
baseline prompt of every node validates clean (checked first): any error in a case is the bad value's.
"""
import asyncio
import math

import pytest
import safetensors.torch
import torch
from PIL import Image

import execution
import folder_paths
from comfy_api.latest import io
from reenact_core.embedding_file import save_embedding
from reenact_core.motion_embedding import MotionEmbedding
from reenact_testkit.comfy_pack import node_class, pack_node_ids
from reenact_testkit.media import moving_square_frames, write_video

pytestmark = pytest.mark.floor

# Where each linked type comes from: a core node, the output slot, and its widget values.
PROVIDERS = {
    "MODEL": ("CheckpointLoaderSimple", 0), "VAE": ("CheckpointLoaderSimple", 2),
    "CLIP_VISION": ("CLIPVisionLoader", 0), "IMAGE": ("LoadImage", 0), "LATENT": ("EmptyLatentImage", 0),
    "CONDITIONING": ("CLIPTextEncode", 0), "MOTION_EMBEDDING": ("LoadMotionEmbedding", 0),
}
PROVIDER_NODES = {
    "CheckpointLoaderSimple": {"ckpt_name": "svd.safetensors"},
    "CLIPVisionLoader": {"clip_name": "vision.safetensors"},
    "LoadImage": {"image": "target.png"},
    "EmptyLatentImage": {"width": 64, "height": 64, "batch_size": 4},
    "CLIPTextEncode": {"text": "", "clip": ["CheckpointLoaderSimple", 1]},
    "LoadMotionEmbedding": {"embedding_name": "wave_00001.safetensors"},
}
WIDGETS = (io.Int.Input, io.Float.Input, io.Combo.Input, io.String.Input, io.Boolean.Input)


@pytest.fixture()
def model_folders(tmp_folders):
    """Files the providers name: ComfyUI's validation only checks that they are listed."""
    saved = {k: folder_paths.folder_names_and_paths[k] for k in ("checkpoints", "clip_vision")}
    for key, name in (("checkpoints", "svd.safetensors"), ("clip_vision", "vision.safetensors")):
        folder = tmp_folders / key
        folder.mkdir()
        safetensors.torch.save_file({"x": torch.zeros(1)}, folder / name)
        folder_paths.folder_names_and_paths[key] = ([str(folder)], saved[key][1])
    Image.new("RGB", (64, 64)).save(tmp_folders / "input" / "target.png")
    write_video(str(tmp_folders / "input" / "reference.mp4"), moving_square_frames(count=16, size=(64, 64)))
    save_embedding(MotionEmbedding(torch.zeros(5, 2, 64)), str(tmp_folders / "embeddings"), "wave")
    folder_paths.filename_list_cache.clear()
    try:
        yield tmp_folders
    finally:
        folder_paths.folder_names_and_paths.update(saved)
        folder_paths.filename_list_cache.clear()


def widget_inputs(node_id):
    return [i for i in node_class(node_id).GET_SCHEMA().inputs if isinstance(i, WIDGETS) and not i.force_input]


def baseline_prompt(node_id):
    """The node with every widget at its default (the first option of a combo) and every required link fed."""
    prompt = {name: {"class_type": name, "inputs": dict(widgets)} for name, widgets in PROVIDER_NODES.items()}
    inputs = {}
    for i in node_class(node_id).GET_SCHEMA().inputs:
        if isinstance(i, WIDGETS) and not i.force_input:
            value = i.default if i.default is not None else (i.options[0] if isinstance(i, io.Combo.Input) else "")
            inputs[i.id] = value
        elif not i.optional:
            provider, slot = PROVIDERS[i.get_io_type()]
            inputs[i.id] = [provider, slot]
    if node_id == "LoadMotionReference":
        inputs["video"] = "reference.mp4"
    prompt["under_test"] = {"class_type": node_id, "inputs": inputs}
    return prompt


def validate(prompt):
    valid, errors, _ = asyncio.run(execution.validate_inputs("validation-test", prompt, "under_test", {}))
    return valid, errors


def bad_values(spec):
    """(what, value) pairs outside what the input declares."""
    if isinstance(spec, io.Combo.Input):
        yield "not an option", "surely-not-an-option"
        return
    if isinstance(spec, (io.Int.Input, io.Float.Input)):
        if spec.min is not None:
            yield "below min", spec.min - 1
        if spec.max is not None:
            yield "above max", spec.max + 1
    if isinstance(spec, io.Float.Input):
        yield "NaN", math.nan


def cases():
    for node_id in sorted(pack_node_ids()):
        for spec in widget_inputs(node_id):
            for what, value in bad_values(spec):
                yield pytest.param(node_id, spec.id, value, id=f"{node_id}.{spec.id}:{what}")


def names_the_input(error, name):
    """ComfyUI's own errors carry the input's name; a custom check's message must say it as well."""
    if error["extra_info"].get("input_name") != name:
        return False
    return error["type"] != "custom_validation_failed" or name in error["details"].split(" - ", 1)[-1]


def test_every_node_has_cases_and_a_clean_baseline(model_folders, node_ids):
    for node_id in node_ids:
        valid, errors = validate(baseline_prompt(node_id))
        assert valid, (node_id, errors)
    covered = {c.values[0] for c in cases()}
    assert covered == set(node_ids) - {"SaveMotionEmbedding"}, "every node with a number or combo widget"


@pytest.mark.parametrize("node_id,name,value", list(cases()))
def test_out_of_range_value_rejected_before_running(model_folders, node_id, name, value):
    prompt = baseline_prompt(node_id)
    prompt["under_test"]["inputs"][name] = value
    valid, errors = validate(prompt)
    assert not valid, f"{node_id}.{name}={value!r} passed ComfyUI's validation"
    assert any(names_the_input(e, name) for e in errors), errors


@pytest.mark.parametrize("node_id,inputs,message", [
    ("OptimizeMotionEmbedding", {"steps": 10, "warmup_steps": 11},
     "expected warmup_steps of at most steps (10), got 11"),
    ("OptimizeMotionEmbedding", {"learning_rate": math.nan}, "expected a finite learning_rate, got nan"),
    ("OptimizeMotionEmbedding", {"run_name": "../up"}, "expected a run name without slashes (like 'wave'), "
                                                        "got '../up'"),
    ("LoadMotionReference", {"width": 96}, "expected width and height that are multiples of 64, got 96x576"),
    ("SaveMotionEmbedding", {"filename_prefix": "../outside"}, "expected a file name prefix inside the "
                                                              "motion_embeddings folder"),
    ("LoadMotionEmbedding", {"embedding_name": "gone.safetensors"}, "'gone.safetensors', which is not there"),
])
def test_checks_comfyui_cannot_do_say_what_was_expected(model_folders, node_id, inputs, message):
    prompt = baseline_prompt(node_id)
    prompt["under_test"]["inputs"].update(inputs)
    valid, errors = validate(prompt)
    assert not valid and any(message in e["details"] for e in errors), errors


def test_linked_widgets_are_left_to_the_run(model_folders):
    """A widget fed by a link is unknown at validation (None there): skipped, as ComfyUI skips linked values."""
    prompt = baseline_prompt("OptimizeMotionEmbedding")
    reference = baseline_prompt("LoadMotionReference")["under_test"]
    prompt["fps_source"] = reference
    prompt["under_test"]["inputs"]["learning_rate"] = ["fps_source", 1]  # a FLOAT output
    assert validate(prompt) == (True, [])


def test_a_video_uploaded_into_a_subfolder_is_valid(model_folders):
    """Uploads may go to input/<subfolder>/ (the command line's do): valid by path, like core LoadImage, though
    the listed options hold only the input folder's own files. A missing one is named."""
    (model_folders / "input" / "clips").mkdir()
    write_video(str(model_folders / "input" / "clips" / "wave.mp4"), moving_square_frames(count=16, size=(64, 64)))
    prompt = baseline_prompt("LoadMotionReference")
    prompt["under_test"]["inputs"]["video"] = "clips/wave.mp4"
    assert validate(prompt) == (True, [])
    prompt["under_test"]["inputs"]["video"] = "clips/gone.mp4"
    valid, errors = validate(prompt)
    assert not valid and any("got 'clips/gone.mp4', which is not there" in e["details"] for e in errors)
