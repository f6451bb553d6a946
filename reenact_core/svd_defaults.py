"""SVD's generation defaults, written once: the size and length SVD was trained at (what Load Motion Reference and
the bundled workflows default to) and the bundled transfer workflow's sampler steps. The command-line tools read
their defaults from here, so a default is never typed twice."""
FRAMES = 14
WIDTH, HEIGHT = 1024, 576
SAMPLER_STEPS = 25
