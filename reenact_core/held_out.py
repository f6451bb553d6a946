"""A held-out loss the user can read, and the rule that ends a run once the motion is learned.

Why: the training loss jumps with each step's random noise level (by how much on the demo: benchmarks/toy/README.md),
so it cannot say when the motion is learned. The held-out loss is the same denoising loss at a fixed set of
(sigma, noise) draws, so it moves only when the tokens do: the deterministic loss that arXiv 2302.04841 stops
textual inversion on. The sigmas sit at evenly spaced quantiles of the run's own log-normal, so the whole noise range
counts as it does in training on average; the noise comes from a generator of its own, seeded from the run's seed,
so evaluating never changes the optimisation.
"""
import math
import statistics
from dataclasses import dataclass

import torch

HELD_OUT_SEED_OFFSET = 0x4E1D  # the held-out noise's generator: the run's seed plus this, apart from training's


def held_out_sigmas(count: int, log_mean: float, log_std: float, sigma_min: float, sigma_max: float,
                    quantiles=None) -> list[float]:
    """sigma at the (i + 1/2)/count quantiles of log-normal(log_mean, log_std), or at the given `quantiles`, clamped
    to the model's range."""
    normal = statistics.NormalDist()
    quantiles = quantiles or [(i + 0.5) / count for i in range(count)]
    sigmas = [math.exp(log_mean + log_std * normal.inv_cdf(q)) for q in quantiles]
    return [min(max(s, sigma_min), sigma_max) for s in sigmas]


def held_out_draws(seed: int, count: int, shape, settings, model_sampling) -> list[tuple[float, torch.Tensor]]:
    """The run's fixed (sigma, noise) pairs: the same for a seed, whether the run is new or resumed."""
    generator = torch.Generator().manual_seed((seed + HELD_OUT_SEED_OFFSET) % 2 ** 64)
    sigmas = held_out_sigmas(count, settings.sigma_log_mean, settings.sigma_log_std,
                             float(model_sampling.sigma_min), float(model_sampling.sigma_max))
    return [(sigma, torch.randn(shape, generator=generator)) for sigma in sigmas]


def held_out_loss(objective, tokens: torch.Tensor, draws) -> float:
    """Mean denoising loss of `tokens` over the fixed draws, without gradients."""
    with torch.inference_mode():
        conds = objective.model_conds(tokens.detach().to(objective.device, torch.float32))
        return sum(objective.loss(conds, sigma, noise).item() for sigma, noise in draws) / len(draws)


@dataclass(frozen=True)
class StopRule:
    """Stop once the best held-out loss of the last `patience` evaluations is no better than (1 - min_improvement)
    times the best before them.

    A relative improvement rather than the paper's windowed variance: the held-out loss of a motion still being
    learned falls slowly but steadily, which a variance window reads as flat; a relative test over a window of
    evaluations needs no scale, and `patience` evaluations of `every` steps bound how long a plateau is tolerated.
    """
    patience: int
    min_improvement: float

    def reason(self, history: list, every: int) -> str | None:
        """Why the run should stop now, or None; `history` is [(step, held-out loss), ...], oldest first."""
        history = [(step, loss) for step, loss in history if math.isfinite(loss)]
        if len(history) <= self.patience:
            return None
        before = min(loss for _, loss in history[:-self.patience])
        recent = min(loss for _, loss in history[-self.patience:])
        if recent <= before * (1.0 - self.min_improvement):
            return None
        best_step, best = min(history, key=lambda point: point[1])
        return (f"the held-out loss improved by less than {self.min_improvement:.0%} over the last {self.patience} "
                f"evaluations ({self.patience * every} steps); best {best:.4g} at step {best_step}")
