"""Train the toy SVD on the CPU with a fixed seed and write reenact_toy/toy_svd.safetensors.

    python benchmarks/toy/train_toy_svd.py                 # regenerates the committed fixture
    python benchmarks/toy/train_toy_svd.py --steps 200 --out /tmp/toy.safetensors   # a quick trial

Why it is built this way (see benchmarks/toy/README.md for the measured effect):
- Each frame's token encodes the blob's offset from its frame-0 position, so every frame can be
  rendered from the first frame plus its own token; no integration over time is needed.
- The toy is deterministic given (first frame, tokens), so at high sigma the denoiser must output
  the conditional video exactly: sigma is drawn from a mixture that covers SVD's whole range up
  to 700 (where the sampler's first steps decide the motion) and the mid range (where detail forms).
- SD-style init (residual branches start at zero), AdamW with warm-up and cosine decay, an EMA of
  the weights for sampling, and 10% token dropout (the null token = plain conditioning) plus 5%
  image dropout so the negative ComfyUI builds for SVD (zero token, zero image) is in distribution.
The conds are built by ComfyUI's own SVD_img2vid.extra_conds, and the loss uses the model's own
model_sampling (noise_scaling, apply_model's EDM preconditioning), as reenact_core.inversion does.
"""
import argparse
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from reenact_cli.locate import setup_comfyui  # noqa: E402

setup_comfyui(cpu=True)
import torch  # noqa: E402
import comfy.utils  # noqa: E402

from reenact_toy import toy_svd, toy_world  # noqa: E402


def parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8, help="videos per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--token-dropout", type=float, default=0.1)
    p.add_argument("--image-dropout", type=float, default=0.05)
    p.add_argument("--high-sigma-share", type=float, default=0.5,
                   help="share of draws log-uniform on [2, 700]; the rest log-normal(-0.2, 1.2)")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-videos", type=int, default=16)
    p.add_argument("--final-eval-videos", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared 2-core machine")
    p.add_argument("--out", default=toy_svd.FIXTURE)
    return p.parse_args()


def draw_sigma(gen, high_share):
    if float(torch.rand((), generator=gen)) < high_share:
        lo, hi = math.log(2.0), math.log(700.0)
        return math.exp(lo + (hi - lo) * float(torch.rand((), generator=gen)))
    return math.exp(-0.2 + 1.2 * float(torch.randn((), generator=gen)))


def video_conds(model, video, token_drop, image_drop):
    """apply_model kwargs for one video, built by ComfyUI's own SVD_img2vid.extra_conds."""
    frames = video.latents.shape[0]
    tokens = toy_world.motion_embedding_tokens(video.path)
    if token_drop:
        tokens = torch.zeros_like(tokens)
    first = video.latents[:1]
    if image_drop:
        first = torch.zeros_like(first)
    conds = model.extra_conds(concat_latent_image=first, noise=video.latents, cross_attn=tokens[:-1],
                              time_conditioning=tokens[-1:], fps=toy_svd.FPS,
                              motion_bucket_id=toy_svd.MOTION_BUCKET, augmentation_level=0.0)
    return {k: c.process_cond(batch_size=frames, area=None, device="cpu").cond for k, c in conds.items()}


def batch_conds(model, videos, gen, token_dropout, image_dropout):
    per_video = [video_conds(model, v, float(torch.rand((), generator=gen)) < token_dropout,
                             float(torch.rand((), generator=gen)) < image_dropout) for v in videos]
    out = {}
    for k, first in per_video[0].items():
        out[k] = torch.cat([c[k] for c in per_video], 0) if torch.is_tensor(first) else first
    return out


def edm_loss(model, latents, video_sigmas, gen, conds):
    """SVD's EDM loss on a batch of videos (one sigma each) through ComfyUI's model_sampling and apply_model.
    `conds()` gives apply_model's kwargs; it is called after the noise is drawn (the generator's reading order)."""
    frames = latents[0].shape[0]
    ms = model.model_sampling
    x0 = model.process_latent_in(torch.cat(latents, 0))
    sigmas = torch.tensor(video_sigmas, dtype=torch.float32).repeat_interleave(frames)
    noise = torch.randn(x0.shape, generator=gen)
    xt = ms.noise_scaling(sigmas.view(-1, 1, 1, 1), noise, x0)
    denoised = model.apply_model(xt, sigmas, **conds()).float()
    sd = float(ms.sigma_data)
    weight = ((sigmas ** 2 + sd ** 2) / (sigmas * sd) ** 2).view(-1, 1, 1, 1)
    return (weight * (denoised - x0) ** 2).mean()


def train_step(model, videos, gen, opts):
    sigmas = [draw_sigma(gen, opts.high_sigma_share) for _ in videos]
    return edm_loss(model, [v.latents for v in videos], sigmas, gen,
                    lambda: batch_conds(model, videos, gen, opts.token_dropout, opts.image_dropout))


@torch.no_grad()
def ema_update(ema, model, decay):
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)


def evaluate(patcher, count, modes=("true", "wrong", "plain"), seed=10_000):
    """Obedience on `count` held-out videos (seed 10000, never drawn in training) for each mode."""
    videos = toy_world.make_videos(count, seed)
    result = {}
    for mode in modes:
        start = time.time()
        frac, errors = toy_svd.obedience(patcher, videos, mode, seed=seed)
        mean_err = sum(e[0] for e in errors) / len(errors)
        result[mode] = frac
        kinds = {k: [e[2] for v, e in zip(videos, errors) if v.kind == k] for k in toy_world.KINDS}
        by_kind = ", ".join(f"{k} {sum(m) / len(m):.2f}/{len(m)}" for k, m in kinds.items() if m)
        print(f"  obedience[{mode}] = {frac:.3f} (mean path error {mean_err:.2f} px; {by_kind}; "
              f"{time.time() - start:.0f} s)", flush=True)
    return result


def main():
    opts = parse()
    torch.set_num_threads(opts.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    torch.manual_seed(opts.seed)
    model = toy_svd.build_toy_model(seed=opts.seed, for_training=True)
    model.train()
    model.diffusion_model.requires_grad_(True)  # ComfyUI makes its weights without gradients
    ema = toy_svd.build_toy_model(seed=opts.seed).eval()  # a second build: ComfyUI's model does not deepcopy
    ema.diffusion_model.load_state_dict(model.diffusion_model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    ema_patcher = toy_svd.wrap(ema)
    params = [p for p in model.diffusion_model.parameters()]
    print(f"toy SVD: {sum(p.numel() for p in params) / 1e6:.2f} M parameters; "
          f"{toy_world.FRAMES} frames of {toy_world.SIZE}x{toy_world.SIZE} latents; "
          f"{opts.steps} steps at batch {opts.batch}", flush=True)
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.01)

    def lr_at(step):
        if step < opts.warmup:
            return (step + 1) / opts.warmup
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - opts.warmup) / max(1, opts.steps - opts.warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    gen = torch.Generator().manual_seed(opts.seed)
    start, running = time.time(), []
    for step in range(1, opts.steps + 1):
        videos = [toy_world.make_video(gen) for _ in range(opts.batch)]
        loss = train_step(model, videos, gen, opts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        ema_update(ema, model, min(opts.ema, (1 + step) / (10 + step)))
        running.append(loss.item())
        if step % 50 == 0:
            print(f"step {step}: loss {sum(running) / len(running):.4f}, lr {schedule.get_last_lr()[0]:.2e}, "
                  f"{time.time() - start:.0f} s", flush=True)
            running = []
        if opts.eval_every and step % opts.eval_every == 0 and step < opts.steps:
            evaluate(ema_patcher, opts.eval_videos, modes=("true",))
            # a snapshot outside the repository, to inspect a run before it ends
            toy_svd.save_fixture(ema.diffusion_model, os.path.join(tempfile.gettempdir(), "toy_svd_partial.safetensors"),
                                 metadata={"steps": step})
    train_seconds = time.time() - start
    print(f"training took {train_seconds / 60:.1f} min", flush=True)
    final = evaluate(ema_patcher, opts.final_eval_videos)
    toy_svd.save_fixture(ema.diffusion_model, opts.out, metadata={
        "steps": opts.steps, "batch": opts.batch, "seed": opts.seed, "lr": opts.lr,
        "train_minutes": f"{train_seconds / 60:.1f}", "obedience_true": final["true"],
        "obedience_wrong": final["wrong"], "obedience_plain": final["plain"]})
    print(f"wrote {opts.out}", flush=True)


if __name__ == "__main__":
    main()
