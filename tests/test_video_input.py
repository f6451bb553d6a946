"""LoadMotionReference fed a core VIDEO: from ComfyUI's own Load Video (a file, read as a stream, only the selected
frames decoded), edited by Trim Video or a crop (read as edited), and Create Video (frames in memory), and a prompt
with Load Video validating with the file empty."""
import asyncio
import io

import numpy as np
import pytest
import torch

import execution
import nodes as comfy_nodes
from comfy_api.latest import InputImpl
from comfy_extras import nodes_video
from comfy_extras.nodes_video import CreateVideo, LoadVideo

from comfyui_version import __version__ as COMFYUI_VERSION
from reenact_testkit.comfy_pack import run_node
from reenact_testkit.node_inputs import LOAD_REFERENCE_INPUTS
from reenact_testkit.media import (count_decoded_frames, frame_colour, record_av_reads, write_coloured_mp4,
                                  write_video)

pytestmark = pytest.mark.floor

TrimVideo = getattr(nodes_video, "VideoSlice", None)  # core "Trim Video"; ComfyUI 0.3.x has none
needs_trim_video = pytest.mark.skipif(TrimVideo is None, reason=f"ComfyUI {COMFYUI_VERSION} has no Trim Video "
                                                                f"(comfy_extras.nodes_video.VideoSlice) to test")
needs_crop = pytest.mark.skipif(not hasattr(InputImpl.VideoFromFile, "as_cropped"),
                                reason=f"ComfyUI {COMFYUI_VERSION} cannot crop a VIDEO (VideoFromFile has no "
                                       f"as_cropped; Load Video's crop edit came later)")


def core_video(node, **inputs):
    """The VIDEO a core node outputs, called as the executor calls it (its FUNCTION, in inference mode)."""
    with torch.inference_mode():
        return getattr(node, node.FUNCTION)(**inputs).args[0]


def load(video_input=None, video="", **overrides):
    return run_node("LoadMotionReference", video=video, video_input=video_input,
                    **{**LOAD_REFERENCE_INPUTS, **overrides})


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
    write_coloured_mp4(tmp_folders / "input" / "clip.mp4", 40, 98, 54, fps=12.5)
    video = core_video(LoadVideo, file="clip.mp4")
    from_video = load(video, width=128, height=64, **selection)
    from_file = load(video="clip.mp4", width=128, height=64, **selection)
    assert torch.equal(from_video[0], from_file[0]), "one reader, one selection: the same frames"
    assert (centre_colours(from_video[0]) - expected_colours(indices)).abs().max() <= 12
    assert from_video[1:] == from_file[1:], "same source fps, clip fps and name"
    assert from_video[1] == pytest.approx(12.5) and from_video[3] == "clip.mp4"


def test_only_frames_up_to_the_last_selected_are_decoded(tmp_folders, monkeypatch, no_whole_decode):
    write_coloured_mp4(tmp_folders / "input" / "long.mp4", 200, 64, 64)
    decoded = count_decoded_frames(monkeypatch)
    frames, *_ = load(core_video(LoadVideo, file="long.mp4"), start_frame=5, frame_count=4, stride=3)
    assert frames.shape[0] == 4
    assert len(decoded) == 15, "frames 0..14 decoded (5, 8, 11, 14 selected), none of the 185 after"


def test_video_wins_over_images_and_file(tmp_folders):
    """Precedence: VIDEO, then images, then the file."""
    write_coloured_mp4(tmp_folders / "input" / "wanted.mp4", 6, 64, 64)
    write_coloured_mp4(tmp_folders / "input" / "other.mp4", 6, 64, 64, fps=25.0)
    black = torch.zeros(6, 64, 64, 3)
    frames, fps, _, name = load(core_video(LoadVideo, file="wanted.mp4"), video="other.mp4", images=black,
                                images_fps=8.0)
    assert name == "wanted.mp4" and fps == pytest.approx(10.0) and frames.max() > 0.5
    frames, fps, _, name = load(None, video="other.mp4", images=black, images_fps=8.0)
    assert name == "IMAGE" and fps == 8.0 and frames.max() == 0


def test_video_in_memory_stream(tmp_folders, no_whole_decode):
    """A VIDEO over a BytesIO (as API nodes make them): read through the stream; no file name to report."""
    write_coloured_mp4(tmp_folders / "input" / "clip.mp4", 8, 64, 64)
    video = InputImpl.VideoFromFile(io.BytesIO((tmp_folders / "input" / "clip.mp4").read_bytes()))
    frames, fps, clip_fps, name = load(video, start_frame=1, stride=2)
    assert name == "VIDEO" and fps == pytest.approx(10.0) and clip_fps == pytest.approx(5.0)
    assert (centre_colours(frames) - expected_colours((1, 3, 5, 7))).abs().max() <= 12


def test_too_few_frames_is_known_from_the_header(tmp_folders, monkeypatch):
    """An mp4 says how many frames it has: too few is reported before any frame is decoded."""
    write_coloured_mp4(tmp_folders / "input" / "short.mp4", 5, 64, 64)
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


def trimmed(file, **trim):
    """Load Video -> core Trim Video, as a user wires them: the VIDEO Load Motion Reference receives."""
    return core_video(TrimVideo, video=core_video(LoadVideo, file=file),
                      **{"start_time": 0.0, "duration": 0.0, "strict_duration": False, **trim})


@pytest.fixture()
def four_seconds(tmp_folders):
    """100 frames at 25 fps, each its own colour: frame i starts at i / 25 s."""
    write_coloured_mp4(tmp_folders / "input" / "clip.mp4", 100, 64, 64, fps=25.0)
    return "clip.mp4"


@needs_trim_video
def test_trim_video_start_is_where_frame_zero_is(four_seconds, monkeypatch, no_whole_decode):
    """Trimmed to start at 2 s, frame 0 is the file's frame 50: the same pixels as frames 50-53 read from the
    file, found by seeking, not by decoding the 50 frames before them."""
    from_file = load(video=four_seconds, start_frame=50)[0]
    decoded = count_decoded_frames(monkeypatch)
    frames, fps, clip_fps, name = load(trimmed(four_seconds, start_time=2.0))
    assert (centre_colours(frames) - expected_colours(range(50, 54))).abs().max() <= 12
    assert torch.equal(frames, from_file), "the file's own frames 50-53, decoded the same way"
    assert (fps, clip_fps, name) == (25.0, 25.0, "clip.mp4")
    assert len(decoded) < 20, f"expected a seek to the key frame before 2 s, got {len(decoded)} frames decoded"


@needs_trim_video
def test_start_frame_and_stride_count_from_the_trim_start(four_seconds):
    frames, *_ = load(trimmed(four_seconds, start_time=2.0), start_frame=1, stride=2)
    assert (centre_colours(frames) - expected_colours((51, 53, 55, 57))).abs().max() <= 12


@needs_trim_video
def test_negative_trim_start_counts_from_the_end(four_seconds):
    """Trim Video's start -1 s on a 4 s clip: the last second, frames 75 on."""
    frames, *_ = load(trimmed(four_seconds, start_time=-1.0))
    assert (centre_colours(frames) - expected_colours(range(75, 79))).abs().max() <= 12


@needs_trim_video
def test_trim_duration_too_short_for_the_selection_names_the_window(four_seconds):
    """0.1 s from 2 s holds frames 50, 51 and 52 only: four frames is the usual clear error, naming the window,
    and three are read."""
    video = trimmed(four_seconds, start_time=2.0, duration=0.1)
    with pytest.raises(ValueError, match=r"expected 4 frames from frame 0, every 1 frame\(s\) \(source 25 fps\), "
                                         r"but clip.mp4 \(trimmed to 0.1 s from 2 s\) has only 3 frames, which "
                                         r"gives 3: lower"):
        load(video)
    frames, *_ = load(video, frame_count=3)
    assert (centre_colours(frames) - expected_colours((50, 51, 52))).abs().max() <= 12


def count_demuxed_video_packets(monkeypatch) -> list:
    """Video packets ComfyUI's own decoding (get_components: demux, then decode each packet) reads, one frame each
    in these files, counted by wrapping av.open."""
    return record_av_reads(monkeypatch, "demux", lambda packet: packet.stream.type == "video" and packet.size)


@needs_trim_video
def test_comfy_decoding_cut_short_gives_the_stream_readers_frames(pack, four_seconds, monkeypatch):
    """A cropped VIDEO is decoded by ComfyUI itself (its crop is in no stream), cut by as_trimmed just past the last
    selected frame. Run on a trimmed one here: the same frames as the stream reader, the frames after the last
    selected one not read, and a shorter trim not made longer."""
    import importlib
    load_reference = importlib.import_module(f"{pack.__name__}.nodes.load_reference")
    video = trimmed(four_seconds, start_time=2.0)
    from_stream = load(video, start_frame=1, stride=2)[0]
    demuxed = count_demuxed_video_packets(monkeypatch)
    selection = load_reference.FrameSelection(1, 4, 2)
    frames, fps = load_reference.read_through_comfy(video, selection, load_reference.trim_window(video), "clip.mp4")
    assert fps == 25.0 and (frames - from_stream).abs().max() <= 3 / 255, "ComfyUI's decoding and the reader agree"
    assert 0 < len(demuxed) < 20, f"expected reading to stop near frame 58, got {len(demuxed)} frames demuxed"
    short = trimmed(four_seconds, start_time=2.0, duration=0.2)  # frames 50-54: too few for frame 57
    with pytest.raises(ValueError, match=r"but clip.mp4 has only 5 frames, which gives 2"):
        load_reference.read_through_comfy(short, selection, load_reference.trim_window(short), "clip.mp4")


@needs_trim_video
@needs_crop
def test_a_cropped_trimmed_video_is_read_as_cropped(tmp_folders):
    """Newer ComfyUI crops a VIDEO (Load Video's edit, Crop Video) while decoding it: the right half of a frame
    whose left half is black must come out with no black in it, and a trim before the crop still holds."""
    left_black = [np.concatenate([np.zeros((64, 64, 3), np.uint8), np.tile(frame_colour(i), (64, 64, 1))], 1)
                  for i in range(100)]
    write_video(tmp_folders / "input" / "halves.mp4", left_black, fps=25.0)
    video = trimmed("halves.mp4", start_time=2.0).as_cropped(64, 0, 64, 64)
    frames, fps, _, name = load(video, width=64, height=64, resize_mode="stretch")
    assert frames.shape == (4, 64, 64, 3) and fps == 25.0 and name == "halves.mp4"
    colours = expected_colours(range(50, 54))[:, None, None, :]
    assert ((frames[:, 8:-8, 8:-8] * 255).round() - colours).abs().max() <= 12, "the right half only, frames 50-53"


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


def test_a_video_that_encodes_itself_for_a_stream_is_read_from_its_frames(no_encoding):
    """ComfyUI 0.38's VideoFromList (Create Video with a codec, Concatenate Video) gives a stream only by encoding
    itself to MP4; its frames are read as they are instead, never the lossy re-encode."""
    class EncodesItsStream(InputImpl.VideoFromComponents):
        def get_stream_source(self):
            raise AssertionError("the VIDEO was asked to encode itself")

    images = torch.rand(6, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    video = EncodesItsStream(core_video(CreateVideo, images=images, fps=12.0).get_components())
    frames, fps, _, name = load(video, start_frame=2, frame_count=3)
    assert torch.equal(frames, images[2:5]) and fps == 12.0 and name == "VIDEO"


def validate(prompt):
    valid, errors, _ = asyncio.run(execution.validate_inputs("video-input-test", prompt, "under_test", {}))
    return valid, errors


@pytest.mark.parametrize("link", ["video_input", "images", None])
def test_file_is_needed_only_when_nothing_is_linked(tmp_folders, monkeypatch, link):
    """ComfyUI's own prompt validation: Load Video -> VIDEO or Load Image -> images leaves the file combo empty
    and valid; with neither linked the empty file is named."""
    from PIL import Image
    monkeypatch.setitem(comfy_nodes.NODE_CLASS_MAPPINGS, "LoadVideo", LoadVideo)  # the pack's tests load no extras
    write_coloured_mp4(tmp_folders / "input" / "clip.mp4", 20, 64, 64)
    Image.new("RGB", (64, 64)).save(tmp_folders / "input" / "still.png")
    inputs = {**LOAD_REFERENCE_INPUTS, "width": 1024, "height": 576, "video": ""}
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
