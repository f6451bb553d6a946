"""Train the SVD-like toy on the CPU, resumably, and write reenact_toy/svdlike_toy_svd.safetensors.

    python benchmarks/toy/train_svdlike_toy.py                   # trains (or resumes) and writes the fixture
    python benchmarks/toy/train_svdlike_toy.py --steps 20 --state /tmp/s.pt --out /tmp/t.safetensors  # a trial
    python benchmarks/toy/train_svdlike_toy.py --init-from reenact_toy/svdlike_toy_svd.safetensors --steps 1000 \
        --lr 3e-4 --warmup 50 --clip-dropout 0.5 --state ... --out ...   # fine-tune a lever on the trained toy
    (--scene-share 0.67: two videos in three over a static scene of their own, the data-variety lever)
    python benchmarks/toy/train_svdlike_toy.py --model-channels 64 --stop-after 1000 --snapshot-every 500 \
        --state ... --out ...   # the model-size lever: the fixture's recipe at twice the width

Trained as SVD was (benchmarks/toy/README.md, "The SVD-like toy"): no motion token. Per video:
- the CLIP image embedding of frame 0 (the toy's frozen CLIP vision, reenact_toy/toy_clip_vision.py) as the one
  cross-attention token of every frame; the temporal blocks read it too (no time_conditioning), as in SVD;
- frame 0, noise-augmented in pixel space and encoded by the toy VAE, concatenated to every frame;
- fps, motion_bucket_id (from the motion's speed) and the augmentation level as vector conditioning;
- conditioning dropout as SVD's training had: 10% the image embedding, 10% the concatenated frame (zeros, which
  is what ComfyUI's SVD negative holds).
Videos: reenact_toy/svdlike_world.py's training kinds at four speeds, any direction.
Everything else follows the first toy's recipe (train_toy_svd.py): ComfyUI's SVD_img2vid.extra_conds and
model_sampling, EDM weighting, SD-style init, AdamW with warm-up and cosine decay, clipping, an EMA.

Resumable: every --save-every steps the whole state (weights, EMA, optimiser, schedule, random generator, loss
log) is written atomically to --state; a rerun with the same settings continues from there, bit for bit.
"""
import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from reenact_cli.locate import setup_comfyui  # noqa: E402

setup_comfyui(cpu=True)
import torch  # noqa: E402
import comfy.utils  # noqa: E402

from reenact_toy import svdlike_toy, svdlike_world, toy_clip_vision, toy_codec, toy_svd  # noqa: E402

sys.path.insert(0, HERE)
from train_toy_svd import edm_loss, ema_update  # noqa: E402  (the first toy's trainer, beside this file)

DEFAULT_STATE = os.path.join(os.path.expanduser("~"), ".cache", "reenact_anything", "train_svdlike", "state.pt")
SETTINGS = ("steps", "batch", "lr", "warmup", "ema", "seed", "clip_dropout", "image_dropout", "high_sigma_share",
            "p_mean", "p_std", "init_from", "scene_share", "model_channels")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=8, help="videos per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clip-dropout", type=float, default=0.1)
    p.add_argument("--image-dropout", type=float, default=0.1)
    p.add_argument("--high-sigma-share", type=float, default=0.3,
                   help="share of sigma draws log-uniform on [2, 700], where the sampler's first steps decide "
                        "the motion; the rest log-normal(p_mean, p_std), the pack's inversion default")
    p.add_argument("--p-mean", type=float, default=0.7)
    p.add_argument("--p-std", type=float, default=1.6)
    p.add_argument("--init-from", default="",
                   help="start from these weights (a fixture) instead of a fresh init: model and EMA, new optimiser")
    p.add_argument("--scene-share", type=float, default=0.0,
                   help="share of videos drawn over a static scene (svdlike_world.over_a_scene): data variety")
    p.add_argument("--model-channels", type=int, default=toy_svd.MODEL_CHANNELS,
                   help="the UNet's width: 64 for the model-size lever (8.3 M parameters, about 2.8x the step time)")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--snapshot-every", type=int, default=1000,
                   help="also write the EMA weights as <out stem>_step<N>.safetensors beside --state")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stop-after", type=int, default=0,
                   help="end this sitting after this many steps, the state saved (as a session cut off would)")
    p.add_argument("--state", default=DEFAULT_STATE)
    p.add_argument("--out", default=svdlike_toy.FIXTURE)
    return p.parse_args(argv)


def draw_sigmas(gen, count, opts):
    out = []
    for _ in range(count):
        if float(torch.rand((), generator=gen)) < opts.high_sigma_share:
            lo, hi = math.log(2.0), math.log(700.0)
            out.append(math.exp(lo + (hi - lo) * float(torch.rand((), generator=gen))))
        else:
            out.append(math.exp(opts.p_mean + opts.p_std * float(torch.randn((), generator=gen))))
    return out


def draw_augmentation(gen):
    """SVD's noise augmentation: log-normal around 0.05, and none for a third of the videos (ComfyUI's default)."""
    if float(torch.rand((), generator=gen)) < 1 / 3:
        return 0.0
    return math.exp(-3.0 + 0.5 * float(torch.randn((), generator=gen)))


def batch_conds(model, clip_vision, drawn, gen, opts):
    """apply_model kwargs for a batch of (video, fps, bucket), built by ComfyUI's SVD_img2vid.extra_conds."""
    videos = [v for v, _, _ in drawn]
    frames = videos[0].latents.shape[0]
    aug = torch.tensor([draw_augmentation(gen) for _ in videos])
    firsts = toy_codec.latents_to_pixels(torch.cat([v.latents[:1] for v in videos]))
    torch.manual_seed(int(torch.randint(2 ** 31, (), generator=gen)))  # the augmentation noise, reproducibly
    with torch.no_grad():
        pooled, concat = svdlike_toy.first_frame_conditioning(clip_vision, firsts, aug)
    per_video = []
    for i, (video, fps, bucket) in enumerate(drawn):
        token = pooled[i:i + 1]
        if float(torch.rand((), generator=gen)) < opts.clip_dropout:
            token = torch.zeros_like(token)
        first = concat[i:i + 1]
        if float(torch.rand((), generator=gen)) < opts.image_dropout:
            first = torch.zeros_like(first)
        conds = model.extra_conds(concat_latent_image=first, noise=video.latents, cross_attn=token, fps=fps,
                                  motion_bucket_id=bucket, augmentation_level=float(aug[i]))
        per_video.append({k: c.process_cond(batch_size=frames, area=None, device="cpu").cond
                          for k, c in conds.items()})
    return {k: torch.cat([c[k] for c in per_video], 0) if torch.is_tensor(first) else first
            for k, first in per_video[0].items()}


def train_step(model, clip_vision, drawn, gen, opts):
    sigmas = draw_sigmas(gen, len(drawn), opts)
    return edm_loss(model, [v.latents for v, _, _ in drawn], sigmas, gen,
                    lambda: batch_conds(model, clip_vision, drawn, gen, opts))


def save_state(path, step, model, ema, optimizer, schedule, gen, log, opts, seconds):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".partial"
    torch.save({"step": step, "model": model.diffusion_model.state_dict(), "ema": ema.diffusion_model.state_dict(),
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "gen": gen.get_state(),
                "log": log, "settings": {k: getattr(opts, k) for k in SETTINGS}, "seconds": seconds}, tmp)
    os.replace(tmp, path)


def main(argv=None):
    opts = parse(argv)
    torch.set_num_threads(opts.threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    torch.manual_seed(opts.seed)
    if not os.path.exists(toy_clip_vision.FIXTURE):
        toy_clip_vision.save_fixture(toy_clip_vision.build())
    clip_vision = toy_clip_vision.load()
    model = toy_svd.build_toy_model(seed=opts.seed, for_training=True, model_channels=opts.model_channels)
    model.train()
    model.diffusion_model.requires_grad_(True)  # ComfyUI makes its weights without gradients
    # a second build: ComfyUI's model does not deepcopy
    ema = toy_svd.build_toy_model(seed=opts.seed, model_channels=opts.model_channels).eval()
    if opts.init_from:
        from safetensors.torch import load_file
        weights = load_file(opts.init_from)
        model.diffusion_model.load_state_dict(weights, strict=True)
    ema.diffusion_model.load_state_dict(model.diffusion_model.state_dict())
    for p in ema.parameters():
        p.requires_grad_(False)
    params = list(model.diffusion_model.parameters())
    optimizer = torch.optim.AdamW(params, lr=opts.lr, weight_decay=0.01)

    def lr_at(step):
        if step < opts.warmup:
            return (step + 1) / opts.warmup
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - opts.warmup) / max(1, opts.steps - opts.warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    gen = torch.Generator().manual_seed(opts.seed)
    step, log, seconds = 0, [], 0.0
    if os.path.exists(opts.state):
        state = torch.load(opts.state, weights_only=False)
        settings = {k: getattr(opts, k) for k in SETTINGS}
        defaults = vars(parse([]))  # a setting added since the state was saved had its default then
        if {**{k: defaults[k] for k in SETTINGS}, **state["settings"]} != settings:
            sys.exit(f"expected {opts.state} to hold a run with settings {settings}, got {state['settings']}; "
                     "move it away or pass --state for a new run")
        model.diffusion_model.load_state_dict(state["model"])
        ema.diffusion_model.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        gen.set_state(state["gen"])
        step, log, seconds = state["step"], state["log"], state["seconds"]
        print(f"resumed at step {step} from {opts.state}", flush=True)
    print(f"SVD-like toy: {sum(p.numel() for p in params) / 1e6:.2f} M parameters; {opts.steps} steps at batch "
          f"{opts.batch}; state {opts.state}", flush=True)
    start, running = time.time() - seconds, []
    sitting_end = step + opts.stop_after if opts.stop_after else opts.steps
    while step < min(opts.steps, sitting_end):
        step += 1
        drawn = [svdlike_world.make_video(gen) for _ in range(opts.batch)]
        if opts.scene_share:
            drawn = [(svdlike_world.over_a_scene(v, gen) if float(torch.rand((), generator=gen)) < opts.scene_share
                      else v, fps, bucket) for v, fps, bucket in drawn]
        loss = train_step(model, clip_vision, drawn, gen, opts)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        ema_update(ema, model, min(opts.ema, (1 + step) / (10 + step)))
        running.append(loss.item())
        if step % 50 == 0:
            log.append({"step": step, "loss": sum(running) / len(running), "seconds": round(time.time() - start)})
            print(f"step {step}: loss {log[-1]['loss']:.4f}, lr {schedule.get_last_lr()[0]:.2e}, "
                  f"{log[-1]['seconds']} s", flush=True)
            running = []
        if step % opts.save_every == 0 or step in (opts.steps, sitting_end):
            save_state(opts.state, step, model, ema, optimizer, schedule, gen, log, opts, time.time() - start)
        if opts.snapshot_every and step % opts.snapshot_every == 0:
            stem = os.path.splitext(os.path.basename(opts.out))[0]
            toy_svd.save_fixture(ema.diffusion_model, os.path.join(os.path.dirname(os.path.abspath(opts.state)),
                                                                   f"{stem}_step{step}.safetensors"),
                                 metadata={"steps": step})
    minutes = (time.time() - start) / 60
    if step < opts.steps:
        print(f"stopped at step {step} of {opts.steps}; rerun to go on", flush=True)
        return
    toy_svd.save_fixture(ema.diffusion_model, opts.out, metadata={
        **{k: getattr(opts, k) for k in SETTINGS}, "train_minutes": f"{minutes:.1f}",
        "final_loss": f"{log[-1]['loss']:.4f}" if log else "", "loss_log": json.dumps(log[-20:])})
    print(f"training took {minutes:.1f} min; wrote {opts.out}", flush=True)


if __name__ == "__main__":
    main()
