"""Read a video file's frames: the demo reads its result and its bundled clip this way (the tests too)."""
import cv2
import numpy as np


def read_video_frames(path: str) -> np.ndarray:
    """All frames as (F, H, W, 3) uint8, RGB."""
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
