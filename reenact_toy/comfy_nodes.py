"""Demo-only ComfyUI nodes for the toy world: load the toy SVD with its codec VAE, and condition on a first frame.

Installed next to the pack only by `python -m reenact_cli.run --demo` (in its own temporary ComfyUI
folders), never into a user's ComfyUI. With them, the pack's own nodes run the whole
invert-and-transfer graph on the toy model, which needs no downloaded weights.

ComfyUI reaches them through reenact_toy/__init__.py's comfy_entrypoint: the demo links the reenact_toy
folder into custom_nodes, ComfyUI loads it by path as a package, and the relative imports below find the
toy in that same folder (no sys.path edit). Tests import them as reenact_toy.comfy_nodes.
"""
import torch
from comfy_api.latest import ComfyExtension, io

from . import svdlike_toy, toy_clip_vision, toy_codec, toy_svd, toy_world

CATEGORY = "Reenact Anything/toy demo (not SVD)"


class ToySVDLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ReenactToySVDLoader",
            display_name="Toy SVD Loader (demo, not SVD)",
            category=CATEGORY,
            description="The 2.2 M-parameter SVD trained in this repository on synthetic blob videos, and its "
                        "codec VAE. It shows the method on a model whose motion is known; it is not Stable "
                        "Video Diffusion and knows nothing of real video.",
            inputs=[],
            outputs=[io.Model.Output("model"), io.Vae.Output("vae")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(toy_svd.load_toy_svd(), toy_codec.make_toy_vae())


class SVDLikeToyLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ReenactSVDLikeToyLoader",
            display_name="SVD-like Toy Loader (demo, not SVD)",
            category=CATEGORY,
            description="The toy SVD trained as SVD was, with no motion token: its MODEL, its small frozen "
                        "CLIP_VISION and its codec VAE, for ComfyUI's own SVD_img2vid_Conditioning. It is not "
                        "Stable Video Diffusion and knows nothing of real video.",
            inputs=[],
            outputs=[io.Model.Output("model"), io.ClipVision.Output("clip_vision"), io.Vae.Output("vae")],
        )

    @classmethod
    def execute(cls) -> io.NodeOutput:
        return io.NodeOutput(svdlike_toy.load_svdlike_toy(), toy_clip_vision.load(), toy_codec.make_toy_vae())


class ToyImg2VidConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="ReenactToyImg2VidConditioning",
            display_name="Toy Img2Vid Conditioning (demo, not SVD)",
            category=CATEGORY,
            description="The toy's SVD_img2vid_Conditioning: the start frame's latent to concatenate and the "
                        "null motion token the toy was trained to read as 'motion unknown' (it has no CLIP).",
            inputs=[io.Vae.Input("vae"), io.Image.Input("start_image"),
                    io.Int.Input("video_frames", default=toy_world.FRAMES, min=2, max=64)],
            outputs=[io.Conditioning.Output("positive"), io.Conditioning.Output("negative"),
                     io.Latent.Output("latent")],
        )

    @classmethod
    def execute(cls, vae, start_image, video_frames) -> io.NodeOutput:
        first = vae.encode(start_image[:1, :, :, :3])
        positive, negative = toy_svd.base_conditioning(first)
        latent = torch.zeros(video_frames, toy_world.CHANNELS, *first.shape[-2:])
        return io.NodeOutput(positive, negative, {"samples": latent})


class ToyNodesExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [ToySVDLoader, SVDLikeToyLoader, ToyImg2VidConditioning]
