"""What the nodes share: the custom type, the category and the model folder name."""
from comfy_api.latest import io

MotionEmbeddingType = io.Custom("MOTION_EMBEDDING")
CATEGORY = "Reenact Anything"
EMBEDDINGS_FOLDER = "motion_embeddings"
MAX_SIDE = 4096
# Where tooltips send a user for measured numbers: the repository (the Registry package leaves benchmarks/ out).
REPOSITORY_FILES = "https://github.com/reenact-anything/ComfyUI-Reenact-Anything/blob/main"
BENCHMARKS = f"{REPOSITORY_FILES}/benchmarks/README.md"
TOY_BENCHMARKS = f"{REPOSITORY_FILES}/benchmarks/toy/README.md"


def multiple_of_64_problem(width, height) -> str | None:
    """SVD's UNet halves the 8x-smaller latent three times, so sides must be multiples of 64.

    A widget's step is a hint to the browser only; ComfyUI's validation does not enforce it.
    """
    if width is None or height is None:
        return None
    if width % 64 or height % 64:
        return f"expected width and height that are multiples of 64, got {width}x{height}"
    return None


def size_problem(width: int, height: int) -> str | None:
    """An IMAGE's size, which no widget bounded: multiples of 64 and at most MAX_SIDE (the widgets' max)."""
    if problem := multiple_of_64_problem(width, height):
        return problem
    if max(width, height) > MAX_SIDE:
        return f"expected width and height of at most {MAX_SIDE}, got {width}x{height}"
    return None
