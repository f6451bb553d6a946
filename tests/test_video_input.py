"""LoadMotionReference fed a core VIDEO: from ComfyUI's own Load Video (a file, read as a stream, only the selected
frames decoded) and Create Video (frames in memory), and a prompt with Load Video validating with the file empty."""
import asyncio
import io

import numpy as np
import pytest
import torch

import execution
import nodes as comfy_nodes
from comfy_api.latest import InputImpl
from comfy_extras.nodes_video import CreateVideo, LoadVideo

from conftest import run_node
from test_video_reading import NODE_DEFAULTS, count_decoded_frames, frame_colour, write_mp4


def core_video(node, **inputs):
    """The VIDEO a core node outputs."""
    return node.execute(**inputs).args[0]


def load(video_input=None, video="", **overrides):
    return run_node("LoadMotionReference", video=video, video_input=video_input, **{**NODE_DEFAULTS, **overrides})


def centre_colours(frames):
    return (frames[:, frames.shape[1] // 2, frames.shape[2] // 2] * 255).round()


def expected_colours(indices):
    return torch.tensor(np.stack([frame_colour(i) for i in indices])).float()


@pytest.fixture()
def no_whole_decode(monkeypatch):
    """VideoFromFile.get_components decodes every frame: reading a VIDEO from a file must not call it."""
    def refuse(self):
        raise AssertionError("get_components decodes the whole video")
    monkeypatch.setattr(InputImpl.VideoFromFile, "get_components", refuse)


@pytest.mark.parametrize("selection,indices", [
    (dict(start_frame=2, frame_count=4, stride=2), (2, 4, 6, 8)),
    (dict(start_frame=1, frame_count=3, target_fps=6.25), (1, 3, 5)),  # half the source's 12.5 fps
])
def test_load_video_gives_the_same_frames_as_the_file(tmp_folders, no_whole_decode, selection, indices):
    write_mp4(tmp_folders / "input" / "clip.mp4", 40, 98, 54, fps=12.5)
    video = core_video(LoadVideo, file="clip.mp4")
    from_video = load(video, width=128, height=64, **selection)
    from_file = load(video="clip.mp4", width=128, height=64, **selection)
    assert torch.equal(from_video[0], from_file[0]), "one reader, one selection: the same frames"
    assert (centre_colours(from_video[0]) - expected_colours(indices)).abs().max() <= 12
    assert from_video[1:] == from_file[1:], "same source fps, clip fps and name"
    assert from_video[1] == pytest.approx(12.5) and from_video[3] == "clip.mp4"


def test_only_frames_up_to_the_last_selected_are_decoded(tmp_folders, monkeypatch, no_whole_decode):
    write_mp4(tmp_folders / "input" / "long.mp4", 200, 64, 64)
    decoded = count_decoded_frames(monkeypatch)
    frames, *_ = load(core_video(LoadVideo, file="long.mp4"), start_frame=5, frame_count=4, stride=3)
    assert frames.shape[0] == 4
    assert len(decoded) == 15, "frames 0..14 decoded (5, 8, 11, 14 selected), none of the 185 after"


def test_video_wins_over_images_and_file(tmp_folders):
    """Precedence: VIDEO, then images, then the file."""
    write_mp4(tmp_folders / "input" / "wanted.mp4", 6, 64, 64)
    write_mp4(tmp_folders / "input" / "other.mp4", 6, 64, 64, fps=25.0)
    black = torch.zeros(6, 64, 64, 3)
    frames, fps, _, name = load(core_video(LoadVideo, file="wanted.mp4"), video="other.mp4", images=black,
                                images_fps=8.0)
    assert name == "wanted.mp4" and fps == pytest.approx(10.0) and frames.max() > 0.5
    frames, fps, _, name = load(None, video="other.mp4", images=black, images_fps=8.0)
    assert name == "IMAGE" and fps == 8.0 and frames.max() == 0


def test_video_in_memory_stream(tmp_folders, no_whole_decode):
    """A VIDEO over a BytesIO (as API nodes make them): read through the stream; no file name to report."""
    write_mp4(tmp_folders / "input" / "clip.mp4", 8, 64, 64)
    video = InputImpl.VideoFromFile(io.BytesIO((tmp_folders / "input" / "clip.mp4").read_bytes()))
    frames, fps, clip_fps, name = load(video, start_frame=1, stride=2)
    assert name == "VIDEO" and fps == pytest.approx(10.0) and clip_fps == pytest.approx(5.0)
    assert (centre_colours(frames) - expected_colours((1, 3, 5, 7))).abs().max() <= 12


def test_too_few_frames_is_known_from_the_header(tmp_folders, monkeypatch):
    """An mp4 says how many frames it has: too few is reported before any frame is decoded."""
    write_mp4(tmp_folders / "input" / "short.mp4", 5, 64, 64)
    decoded = count_decoded_frames(monkeypatch)
    with pytest.raises(ValueError, match=r"expected 4 frames from frame 1, every 2 frame\(s\) \(source 10 fps\), "
                                         r"but short.mp4 has only 5 frames, which gives 2: lower"):
        load(core_video(LoadVideo, file="short.mp4"), start_frame=1, stride=2)
    assert decoded == []


def write_webm(path, frames, size=64, fps=10):
    """VP9 in WebM: the container does not record how many frames it holds."""
    import av
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx-vp9", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(frames):
            image = np.ascontiguousarray(np.tile(frame_colour(i), (size, size, 1)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_too_few_frames_without_a_count_in_the_header(tmp_folders):
    """WebM has no frame count: decoding finds the end, and the error is the same."""
    write_webm(tmp_folders / "input" / "short.webm", 5)
    with pytest.raises(ValueError, match=r"expected 4 frames from frame 0, every 2 frame\(s\) \(source 10 fps\), "
                                         r"but short.webm has only 5 frames, which gives 3: lower"):
        load(core_video(LoadVideo, file="short.webm"), stride=2)
    frames, fps, _, name = load(core_video(LoadVideo, file="short.webm"), frame_count=3, stride=2)
    assert name == "short.webm" and fps == pytest.approx(10.0)
    assert (centre_colours(frames) - expected_colours((0, 2, 4))).abs().max() <= 12


@pytest.fixture()
def no_encoding(monkeypatch):
    """A VIDEO made from images would have to encode itself to give a stream: it must not be asked to."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("VideoFromComponents encoded")
    monkeypatch.setattr(InputImpl.VideoFromComponents, "save_to", refuse)


def test_create_video_uses_its_frames_and_rate(no_encoding):
    images = torch.rand(10, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    video = core_video(CreateVideo, images=images, fps=24.0)
    frames, fps, clip_fps, name = load(video, start_frame=1, frame_count=3, target_fps=8.0)
    assert torch.equal(frames, images[[1, 4, 7]]) and fps == 24.0 and clip_fps == 8.0 and name == "VIDEO"
    with pytest.raises(ValueError, match=r"expected 4 frames from frame 4, every 2 frame\(s\) \(source 24 fps\), "
                                         r"but the VIDEO has only 10 frames, which gives 3: lower"):
        load(video, start_frame=4, stride=2)


def validate(prompt):
    valid, errors, _ = asyncio.run(execution.validate_inputs("video-input-test", prompt, "under_test", {}))
    return valid, errors


@pytest.mark.parametrize("link", ["video_input", "images", None])
def test_file_is_needed_only_when_nothing_is_linked(tmp_folders, monkeypatch, link):
    """ComfyUI's own prompt validation: Load Video -> VIDEO or Load Image -> images leaves the file combo empty
    and valid; with neither linked the empty file is named."""
    from PIL import Image
    monkeypatch.setitem(comfy_nodes.NODE_CLASS_MAPPINGS, "LoadVideo", LoadVideo)  # the pack's tests load no extras
    write_mp4(tmp_folders / "input" / "clip.mp4", 20, 64, 64)
    Image.new("RGB", (64, 64)).save(tmp_folders / "input" / "still.png")
    inputs = {**NODE_DEFAULTS, "width": 1024, "height": 576, "video": ""}
    prompt = {"video": {"class_type": "LoadVideo", "inputs": {"file": "clip.mp4"}},
              "image": {"class_type": "LoadImage", "inputs": {"image": "still.png"}},
              "under_test": {"class_type": "LoadMotionReference", "inputs": inputs}}
    if link == "video_input":
        inputs["video_input"] = ["video", 0]
    elif link == "images":
        inputs["images"] = ["image", 0]
    valid, errors = validate(prompt)
    if link:
        assert (valid, errors) == (True, [])
    else:
        assert not valid and any("expected video to be a file in ComfyUI's input folder, got ''" in e["details"]
                                 for e in errors), errors
