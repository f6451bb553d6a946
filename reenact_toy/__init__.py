"""The toy world and toy SVD, as the product's `--demo` runs them: no downloaded weights needed.

Why a package of its own, outside reenact_cli and reenact_testkit: the demo (reenact_cli/demo.py), the
tests (reenact_testkit) and the benchmarks all use the same toy, and the product must never import the
testkit. So the toy lives here and imports nothing from reenact_cli or reenact_testkit; they import it.

- toy_world: blob videos whose motion is known, their motion tokens, a tracker (torch only);
- toy_svd, small_unet: ComfyUI's own SVD classes shrunk to 2.2 M parameters; toy_svd.safetensors, its weights;
- toy_codec: the toy's VAE (an exact 8x codec inside ComfyUI's VAE wrapper);
- comfy_nodes: the demo-only ComfyUI nodes (toy loader, toy conditioning);
- toy_demo, demo_assets/: the demo's bundled inputs, how its result is scored and shown (the result is read
  by the nodes' own reader, reenact_core.video_frames.decode_all_frames). reenact_testkit/make_demo_assets.py
  regenerates demo_assets/.

The demo links this folder into its private ComfyUI's custom_nodes, and ComfyUI loads it by path as a
package, so the nodes reach the toy by relative imports and nothing edits sys.path. The entry point below
imports the nodes only when ComfyUI calls it: importing `reenact_toy` elsewhere needs no ComfyUI.
"""


async def comfy_entrypoint():
    from .comfy_nodes import ToyNodesExtension
    return ToyNodesExtension()
