"""Read a video file's frames: the demo reads its result and its bundled clip this way (the tests too)."""
import cv2
import numpy as np


def decode_all_frames(path: str) -> np.ndarray:
    """Every frame as (F, H, W, 3) uint8 RGB numpy, for checking outputs. Not the nodes' reader:
    reenact_core.video_frames.read_video_frames decodes only the selected frames, as a float IMAGE."""
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
