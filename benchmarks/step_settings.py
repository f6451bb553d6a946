"""The run settings our step benchmark and the peer's share, so a side-by-side compares like with like.

Defaults are issue 4's measuring point: 14 frames, 576x1024, N=5 tokens per frame.
"""
STEP_SETTINGS = ("device", "frames", "height", "width", "tokens", "steps", "warmup")


def add_step_settings(p):
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    p.add_argument("--frames", type=int, default=14)
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--tokens", type=int, default=5)
    p.add_argument("--steps", type=int, default=10, help="timed steps after warm-up")
    p.add_argument("--warmup", type=int, default=2)


def step_settings_flags(opts):
    """The shared settings of parsed `opts` as command-line flags for either benchmark."""
    return [flag for name in STEP_SETTINGS for flag in (f"--{name}", str(getattr(opts, name)))]
