import os

import folder_paths
from comfy_api.latest import InputImpl, io

from ..reenact_core import svd_defaults
from ..reenact_core.errors import ReenactError
from ..reenact_core.video_frames import (RESIZE_MODES, FrameSelection, describe_window, fit_frames,
                                         read_video_frames, select_from_images, stream_size)
from .common import CATEGORY, MAX_SIDE, multiple_of_64_problem
from .schema_features import search_aliases
from .validation import NOT_CONNECTED, declared_problem, first_problem


def _input_videos():
    """Videos in ComfyUI's input folder, by ComfyUI's own content-type helper (as core LoadVideo lists them),
    plus animated GIFs, which that helper files under images."""
    folder = folder_paths.get_input_directory()
    files = [f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f))]
    return sorted({*folder_paths.filter_files_content_types(files, ["video"]),
                   *(f for f in files if f.lower().endswith(".gif"))})


def video_problem(video) -> str | None:
    """The file must be in ComfyUI's input folder. Like core LoadImage, by path rather than by the listed
    options: an upload into a subfolder ('clips/wave.mp4') or an annotated name ('x.mp4 [output]') is valid."""
    if video is None or (video and folder_paths.exists_annotated_filepath(video)):
        return None
    return f"expected video to be a file in ComfyUI's input folder, got {video!r}, which is not there"


def trim_window(video) -> tuple[float, float] | None:
    """The VIDEO's trim over its stream source, (start, duration) in seconds, duration 0 = to the end; (0, 0)
    when untrimmed or when this ComfyUI cannot trim (0.3.x). Trim Video, Load Video's edit and as_trimmed keep
    the whole file as the stream and say the window here. None when the VIDEO can be trimmed but does not
    say its window: then only its own decoding is right."""
    if hasattr(video, "get_active_trim_window"):
        start, duration = video.get_active_trim_window()
        return float(start), float(duration)
    return None if hasattr(video, "as_trimmed") else (0.0, 0.0)


def crop_not_in_stream(video, source) -> bool:
    """Newer ComfyUI crops a VIDEO (Load Video's edit, Crop Video: as_cropped) while decoding it and keeps the
    whole picture in get_stream_source(); ComfyUI says the rectangle nowhere public, but the VIDEO's own size
    then differs from its stream's. Only asked where the VIDEO can be cropped."""
    if not hasattr(video, "as_cropped"):
        return False
    size = stream_size(source)
    return size is not None and tuple(video.get_dimensions()) != size


def read_through_comfy(video, selection: FrameSelection, window, name: str):
    """The selected frames as ComfyUI itself decodes the VIDEO (get_components: its trim and crop applied),
    cut first with its own as_trimmed to end just past the last selected frame, so the frames after it are
    still not decoded. Trims compose, so the window's start stays; a shorter window is not lengthened."""
    step_fps = float(video.get_frame_rate())
    span = (selection.indices(step_fps)[-1] + 1.5) / step_fps if step_fps > 0 else 0.0
    if window is not None and span and (not window[1] or span < window[1]):
        video = video.as_trimmed(0.0, span, strict_duration=False) or video
    components = video.get_components()
    fps = float(components.frame_rate)
    return select_from_images(components.images, selection, fps, name=name), fps


def read_video_input(video, selection: FrameSelection):
    """The selected frames of a core VIDEO, as edited: (frames, its own frame rate, name).

    A VIDEO over a file (VideoFromFile, from Load Video: a path or a BytesIO) is read through that stream by the
    same reader as a file, inside its trim window (Trim Video), so only the frames up to the last selected one are
    decoded; its get_components() would decode the whole window. A crop is not in that stream, so a cropped VIDEO
    is decoded by ComfyUI, cut short first. Any other VIDEO (VideoFromComponents from Create Video; from ComfyUI
    0.38 also VideoFromList, from Create Video with a codec and Concatenate Video) would have to encode itself to
    give a stream, a lossy re-encode, but holds its frames in memory already: the selection is taken from its
    components, at their frame rate."""
    if not isinstance(video, InputImpl.VideoFromFile):
        components = video.get_components()
        fps = float(components.frame_rate)
        return select_from_images(components.images, selection, fps, name="the VIDEO"), fps, "VIDEO"
    source = video.get_stream_source()
    file_name = os.path.basename(source) if isinstance(source, (str, os.PathLike)) else None
    window = trim_window(video)
    if window is None or crop_not_in_stream(video, source):
        shown = file_name or "the VIDEO"
        if window is not None and window != (0.0, 0.0):
            shown = f"{shown} ({describe_window(window)})"
        frames, fps = read_through_comfy(video, selection, window, f"{shown} as edited")
    else:
        frames, fps = read_video_frames(video.get_stream_source(), selection, name=file_name or "the VIDEO",
                                         window=window)
    return frames, fps, file_name or "VIDEO"


class LoadMotionReference(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="LoadMotionReference",
            display_name="Load Motion Reference",
            category=CATEGORY,
            description="Reads the reference video whose motion will be learned, from a connected VIDEO, else "
                        "a connected IMAGE batch, else the file. Only the selected frames are decoded, then "
                        "fitted to the size SVD will see.",
            **search_aliases("reference video", "motion transfer", "motion inversion", "reenact",
                             "reenact anything"),
            inputs=[
                io.Combo.Input("video", options=_input_videos(), upload=io.UploadType.video,
                               tooltip="A video file in ComfyUI's input folder (mp4, webm, mov, gif). Used only "
                                       "when neither VIDEO nor images is connected."),
                io.Int.Input("start_frame", default=0, min=0, max=1_000_000,
                             tooltip="First frame to use (0-based)."),
                io.Int.Input("frame_count", default=svd_defaults.FRAMES, min=2, max=128,
                             tooltip="Frames to take: 14 for SVD, 25 for SVD-XT."),
                io.Int.Input("stride", default=1, min=1, max=100,
                             tooltip="Take every n-th frame. Ignored when target_fps > 0."),
                io.Float.Input("target_fps", default=0.0, min=0.0, max=240.0, step=0.5,
                               tooltip="Pick frames at this rate instead of a fixed stride; 0 = use stride."),
                io.Int.Input("width", default=svd_defaults.WIDTH, min=64, max=MAX_SIDE, step=64),
                io.Int.Input("height", default=svd_defaults.HEIGHT, min=64, max=MAX_SIDE, step=64),
                io.Combo.Input("resize_mode", options=list(RESIZE_MODES), default="crop",
                               tooltip="crop: fill and cut the edges; pad: fit and add black bars; "
                                       "stretch: ignore the aspect ratio."),
                io.Image.Input("images", optional=True,
                               tooltip="An IMAGE batch (e.g. VideoHelperSuite's Load Video, or any node's frames) "
                                       "instead of the file; its rate is images_fps. Wins over the file; ignored "
                                       "when VIDEO is connected."),
                io.Float.Input("images_fps", default=8.0, min=0.1, max=240.0, optional=True,
                               tooltip="Frame rate of the connected IMAGE batch (used only for images)."),
                io.Video.Input("video_input", display_name="VIDEO (from Load Video)", optional=True,
                               tooltip="A core VIDEO (Load Video, Create Video). Wins over images and the file. "
                                       "Its own frame rate is used; from a file only the frames up to the last "
                                       "selected one are decoded."),
            ],
            outputs=[
                io.Image.Output("frames"),
                io.Float.Output("source_fps", tooltip="Frame rate of the source."),
                io.Float.Output("clip_fps", tooltip="Frame rate of the selected frames."),
                io.String.Output("name", tooltip="Source name, recorded in the embedding's metadata."),
            ],
        )

    @classmethod
    def validate_inputs(cls, width, height, target_fps, resize_mode, video=None, images=NOT_CONNECTED,
                        images_fps=None, video_input=NOT_CONNECTED):
        """Frame ranges are ComfyUI's own check; the video file only matters when neither images nor VIDEO is
        connected (a linked input arrives here as None, an absent one keeps its NOT_CONNECTED default)."""
        file_used = images is NOT_CONNECTED and video_input is NOT_CONNECTED
        return first_problem(
            declared_problem(cls, width=width, height=height, target_fps=target_fps, resize_mode=resize_mode,
                             images_fps=images_fps),
            multiple_of_64_problem(width, height),
            video_problem(video) if file_used else None)

    @classmethod
    def fingerprint_inputs(cls, video=None, **kwargs):
        path = folder_paths.get_annotated_filepath(video) if video else None
        return os.path.getmtime(path) if path and os.path.exists(path) else video

    @classmethod
    def execute(cls, video, start_frame, frame_count, stride, target_fps, width, height, resize_mode,
                images=None, images_fps=8.0, video_input=None) -> io.NodeOutput:
        selection = FrameSelection(start_frame, frame_count, stride, target_fps)
        if video_input is not None:
            frames, source_fps, name = read_video_input(video_input, selection)
        elif images is not None:
            frames, source_fps, name = select_from_images(images, selection, images_fps), images_fps, "IMAGE"
        else:
            if not video:
                raise ReenactError("expected a video file, a connected VIDEO or a connected IMAGE batch, "
                                   "got none")
            frames, source_fps = read_video_frames(folder_paths.get_annotated_filepath(video), selection)
            name = os.path.basename(video)
        frames = fit_frames(frames, width, height, resize_mode)
        return io.NodeOutput(frames, float(source_fps), float(selection.clip_fps(source_fps)), name)
