"""The method of motion-textual inversion on ComfyUI's SVD objects. Knows nothing of node classes."""
