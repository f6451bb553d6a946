"""LoadMotionReference on real files encoded here: mp4 and gif, odd sizes, too few frames, only the selected frames
decoded, portrait phone video upright."""

import numpy as np
import pytest
import torch
from PIL import Image

from reenact_testkit.comfy_pack import run_node
from reenact_testkit.media import count_decoded_frames, frame_colour, write_coloured_mp4, write_video
from reenact_testkit.node_inputs import LOAD_REFERENCE_INPUTS

def write_gif(path, frames, width, height):
    images = [Image.fromarray(np.tile(frame_colour(i), (height, width, 1))) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)


def load(video, **overrides):
    return run_node("LoadMotionReference", video=video, **{**LOAD_REFERENCE_INPUTS, **overrides})


@pytest.mark.parametrize("writer,name", [(write_coloured_mp4, "clip.mp4"), (write_gif, "clip.gif")])
def test_reads_selected_frames_in_order(tmp_folders, writer, name):
    writer(tmp_folders / "input" / name, 12, 98, 54)  # odd, non-multiple-of-64 size
    frames, source_fps, clip_fps, label = load(name, start_frame=2, frame_count=4, stride=2, width=128, height=64)
    assert frames.shape == (4, 64, 128, 3) and label == name
    centre = (frames[:, 32, 64] * 255).round()
    expected = torch.tensor(np.stack([frame_colour(i) for i in (2, 4, 6, 8)])).float()
    assert (centre - expected).abs().max() <= 12, "frames 2, 4, 6, 8 in order (lossy codecs allowed +-12)"
    assert source_fps == pytest.approx(10.0, rel=0.05) and clip_fps == pytest.approx(source_fps / 2)


def test_target_fps_picks_frames_by_time(tmp_folders):
    write_coloured_mp4(tmp_folders / "input" / "fast.mp4", 30, 64, 64, fps=30.0)
    frames, source_fps, clip_fps, _ = load("fast.mp4", frame_count=3, target_fps=10.0)
    centre = (frames[:, 32, 32] * 255).round()
    expected = torch.tensor(np.stack([frame_colour(i) for i in (0, 3, 6)])).float()
    assert (centre - expected).abs().max() <= 12 and clip_fps == pytest.approx(10.0, rel=0.05)


def test_fewer_frames_than_asked_is_a_clear_error(tmp_folders):
    """Documented behaviour: no silent padding or looping; the error says what is there."""
    write_coloured_mp4(tmp_folders / "input" / "short.mp4", 5, 64, 64)
    with pytest.raises(ValueError, match=r"expected 4 frames from frame 0, every 2 frame\(s\).*has only 5 frames"):
        load("short.mp4", stride=2)


@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
def test_resize_modes_keep_or_ignore_aspect(tmp_folders, mode):
    h, w = 40, 160  # 4:1 source into a 1:1 target
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = 255  # left half white
    images = torch.from_numpy(np.stack([img] * 4)).float() / 255
    frames, *_ = run_node("LoadMotionReference", video="", images=images, images_fps=8.0,
                          **{**LOAD_REFERENCE_INPUTS, "resize_mode": mode})
    row = frames[0, 32, :, 0]
    if mode == "pad":
        assert frames[0, 0].max() == 0 and frames[0, 32].max() > 0.99, "bars above and below, image in the middle"
    elif mode == "crop":
        assert frames[0, :, :24].min() > 0.99 and frames[0, :, 40:].max() < 0.01, "centre cut of the boundary"
    else:
        assert row[:28].min() > 0.99 and row[36:].max() < 0.01 and frames[0, 0].max() > 0.99


def test_missing_and_corrupt_files(tmp_folders):
    (tmp_folders / "input" / "broken.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(ValueError, match="expected a readable video .*could not open broken.mp4: it may be corrupt"):
        load("broken.mp4")
    with pytest.raises(ValueError, match="does not exist"):
        load("nothing_here.mp4")


def write_audio_only(path):
    """An mp4 holding one AAC audio stream and no video, written with PyAV."""
    import av
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for _ in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def write_no_frames(path):
    """An mp4 whose video stream got no frames: the muxer writes a valid file with no stream in it."""
    import av
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()


@pytest.mark.parametrize("name,make,message", [
    ("zero_bytes.mp4", lambda p: p.write_bytes(b""), "expected a video file with frames, got zero_bytes.mp4, "
                                                     r"which is empty \(0 bytes\)"),
    ("no_frames.mp4", write_no_frames, "expected a video with a video stream, got no_frames.mp4, which has no "
                                       r"streams at all \(no frames\)"),
    ("voice.mp4", write_audio_only, "expected a video with a video stream, got voice.mp4, which has only audio "
                                    "streams"),
    ("single.mp4", lambda p: write_coloured_mp4(p, 1, 64, 64), r"expected 4 frames from frame 0, every 1 frame\(s\) "
                                                      r".*single.mp4 has only 1 frame, which gives 1"),
])
def test_empty_audio_only_and_single_frame_files(tmp_folders, name, make, message):
    make(tmp_folders / "input" / name)
    with pytest.raises(ValueError, match=message):
        load(name)


def test_long_video_is_not_read_whole(tmp_folders, monkeypatch):
    """Reading stops at the last selected frame: frames after it are never decoded."""
    write_coloured_mp4(tmp_folders / "input" / "long.mp4", 200, 64, 64)
    decoded = count_decoded_frames(monkeypatch)
    frames, *_ = load("long.mp4", start_frame=5, frame_count=4)
    assert frames.shape[0] == 4
    assert len(decoded) == 9, "frames 0..8 decoded (5..8 selected), none of the 191 after"


def rotate_in_header(path, quarter_turn):
    """Write a display matrix into an mp4's track header (tkhd, version 0), as phones record portrait video:
    the pixels stay landscape, players turn them. quarter_turn 1 = 90 degrees clockwise."""
    import struct
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd") - 4
    assert data[box + 8] == 0, "version 0 tkhd"
    one, minus_one = 0x00010000, 0xFFFF0000
    matrix = {1: (0, one, 0, minus_one, 0, 0, 0, 0, 0x40000000)}[quarter_turn]
    data[box + 48:box + 84] = struct.pack(">9I", *matrix)
    path.write_bytes(data)


def test_portrait_phone_video_comes_upright(tmp_folders):
    """A 96x64 recording with a 90-degree display matrix is read 64 wide and 96 high, turned clockwise, as players
    show it."""
    from reenact_core.video_frames import FrameSelection, read_video_frames
    path = tmp_folders / "input" / "portrait.mp4"
    frame = np.zeros((64, 96, 3), np.uint8)
    frame[:16, :16] = 255  # white square at the stored top-left
    write_video(path, [frame] * 3, fps=10.0)
    rotate_in_header(path, 1)
    frames, _ = read_video_frames(str(path), FrameSelection(count=2))
    assert frames.shape == (2, 96, 64, 3)
    assert frames[0, :12, -12:].min() > 0.9 and frames[0, :12, :12].max() < 0.1, "white square now top-right"
