"""Samplers as generators: each yields a `Step` after every update, so callers can pause anywhere.

Each sampler is one short function over a denoiser callable `denoise(x, sigma) -> x0_hat`
and a projection callable `project(x0_hat, index, last) -> (projected, distance, binding)`
(k-diffusion's shape, Crowson; EDM's Algorithm 1–2, Karras et al. 2022). Projecting
x0_hat and stepping along d = (x − P(x0_hat))/σ is Projected Diffusion (Christopher et
al. 2024): the trajectory ends on the constraint set. `project=None` turns it off.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

Denoise = Callable[[torch.Tensor, float], torch.Tensor]
Project = Callable[[torch.Tensor, int, bool], "Projected"]


@dataclass
class Projected:
    x: torch.Tensor
    distance: torch.Tensor  # [batch]
    binding: list[str] = field(default_factory=list)
    state: Any = None  # solver warm start, carried in Step so a resumed run is bit-identical


@dataclass
class Step:
    """After update `index`: `x_t` is the state at `sigma_next`; tensors `[batch, characters, beats, features]`."""

    index: int
    sigma: float
    sigma_next: float
    x_t: torch.Tensor
    x0_hat: torch.Tensor
    projected: torch.Tensor
    distance: torch.Tensor
    binding: list[str]
    rng_state: torch.Tensor
    carry: dict[str, Any] = field(default_factory=dict)  # sampler memory (e.g. Permenter–Yuan's previous ε)

    @property
    def last(self) -> bool:
        return self.sigma_next == 0.0


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """EDM's schedule (Karras et al. 2022, eq. 5), with a final 0."""
    ramp = [i / max(n - 1, 1) for i in range(n)]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(hi + r * (lo - hi)) ** rho for r in ramp] + [0.0]


def ddim_sigmas(n: int, sigma_min: float, sigma_max: float, beta_min: float = 0.1, beta_max: float = 20.0) -> list[float]:
    """DDIM's uniform time steps on the VP linear-β schedule (Song et al. 2021), as σ = √((1−ᾱ)/ᾱ).

    Deterministic DDIM is Euler in σ (Karras et al. 2022, §3); what makes it DDIM
    is this schedule, truncated to the model's σ range.
    """
    def sigma_at(t: float) -> float:
        return math.sqrt(math.expm1(0.5 * (beta_max - beta_min) * t * t + beta_min * t))

    t_max = _bisect(lambda t: sigma_at(t) - sigma_max, 1e-5, 1.0)
    t_min = _bisect(lambda t: sigma_at(t) - sigma_min, 1e-9, t_max)
    ts = [t_max + (t_min - t_max) * i / max(n - 1, 1) for i in range(n)]
    return [sigma_at(t) for t in ts] + [0.0]


def _bisect(f: Callable[[float], float], lo: float, hi: float) -> float:
    if f(hi) <= 0:
        return hi
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def _estimate(denoise: Denoise, project: Project | None, x: torch.Tensor, sigma: float, index: int,
              last: bool) -> tuple[torch.Tensor, Projected]:
    x0 = denoise(x, sigma)
    if project is None:
        return x0, Projected(x0, torch.zeros(x.shape[0], device=x.device))
    return x0, project(x0, index, last)


def _step(index: int, sigmas: list[float], x: torch.Tensor, x0: torch.Tensor, p: Projected,
          generator: torch.Generator, **carry: Any) -> Step:
    return Step(index, sigmas[index], sigmas[index + 1], x, x0, p.x, p.distance, p.binding,
                generator.get_state(), {"projection": p.state, **carry})


def sample_euler(denoise: Denoise, x: torch.Tensor, sigmas: list[float], project: Project | None,
                 generator: torch.Generator, start: int = 0, carry: dict | None = None) -> Iterator[Step]:
    """Euler on the probability-flow ODE dx/dσ = (x − D(x))/σ (EDM Algorithm 1 without the correction)."""
    for i in range(start, len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0, p = _estimate(denoise, project, x, s, i, s_next == 0)
        x = p.x + (s_next / s) * (x - p.x)
        yield _step(i, sigmas, x, x0, p, generator)


def sample_heun(denoise: Denoise, x: torch.Tensor, sigmas: list[float], project: Project | None,
                generator: torch.Generator, start: int = 0, carry: dict | None = None) -> Iterator[Step]:
    """EDM's deterministic Heun sampler (Algorithm 1): Euler, then the trapezoidal correction unless σ_next = 0."""
    for i in range(start, len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0, p = _estimate(denoise, project, x, s, i, s_next == 0)
        d = (x - p.x) / s
        x_next = x + (s_next - s) * d
        if s_next > 0:
            _, p2 = _estimate(denoise, project, x_next, s_next, i, False)
            x_next = x + (s_next - s) * 0.5 * (d + (x_next - p2.x) / s_next)
            p = Projected(p.x, p.distance, p.binding, p2.state)  # resume warm-starts from the latest solve
        yield _step(i, sigmas, x_next, x0, p, generator)
        x = x_next


def sample_pyuan(denoise: Denoise, x: torch.Tensor, sigmas: list[float], project: Project | None,
                 generator: torch.Generator, start: int = 0, carry: dict | None = None,
                 gamma: float = 2.0) -> Iterator[Step]:
    """Permenter & Yuan (ICML 2024) gradient-estimation sampler: ε̄ = γ·ε_t + (1−γ)·ε_{t+1}, γ = 2."""
    eps_prev = (carry or {}).get("eps")
    for i in range(start, len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x0, p = _estimate(denoise, project, x, s, i, s_next == 0)
        eps = (x - p.x) / s
        eps_bar = eps if eps_prev is None else gamma * eps + (1 - gamma) * eps_prev
        x = p.x if s_next == 0 else x + (s_next - s) * eps_bar
        yield _step(i, sigmas, x, x0, p, generator, eps=eps)
        eps_prev = eps


SAMPLERS = {"euler": sample_euler, "heun": sample_heun, "ddim": sample_euler, "pyuan": sample_pyuan}


def sigmas_for(sampler: str, steps: int, sigma_min: float, sigma_max: float) -> list[float]:
    """The schedule a sampler uses: DDIM's own, the others EDM's."""
    if sampler == "ddim":
        return ddim_sigmas(steps, sigma_min, sigma_max)
    return karras_sigmas(steps, sigma_min, sigma_max)


def network_evaluations(sampler: str, steps: int) -> int:
    """NFE: Heun evaluates twice per step except the last."""
    return 2 * steps - 1 if sampler == "heun" else steps


def tolerance(index: int, steps: int, final: float = 1e-6, first: float = 1e-3) -> float:
    """Loose on early steps, geometric down to `final` on the last: early x0_hat are rough anyway."""
    if index >= steps - 1:
        return final
    frac = index / max(steps - 1, 1)
    return first ** (1 - frac) * final ** frac
