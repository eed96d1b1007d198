"""The prior: a small transformer over (character, beat) tokens that estimates the clean scene.

The estimate uses EDM's full preconditioning (Karras et al. 2022, Table 1):
D(x; σ) = c_skip(σ)·x + c_out(σ)·F(c_in(σ)·x, c_noise(σ)), with EDM's σ distribution and
loss weighting. `DenoiserConfig.parameterisation` also offers x-prediction (Li & He 2025,
"Back to Basics": D = F(c_in·x, c_noise), the network's output *is* the clean scene, no
skip) and ε-prediction. EDM is the default by measurement: at equal compute it came closest
to held-out simulated and real scenes (benchmarks/RESULTS.md, "Prior quality"). Li & He's
case for x-prediction is data far larger than the network's width; a scene token here has
47 values for a width of 96–128, where the skip connection costs nothing and helps.

Tokens: one per (character, beat), fed felt | shown | mood (47 values).
Attention alternates across beats (within a character) and across characters
(within a beat); in the latter, each pair's stance and static relation become a
per-head attention bias, and stance is read out per ordered pair from both
characters' tokens, their relation and the pair's own noisy stance at that beat,
the beats either side and on average over the scene. Stance and mood are denoised as
their departures from the pair's static relation and the character's baseline mood
(`scene_base`), which are added back.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .conditioning import EMBED_DIM, EVENT_FEATURES, SceneCondition
from .layout import DEFAULT_MAX_CHARACTERS, MOOD, STANCE_START, n_features
from .limits import LIMIT_FEATURES, TOKEN_VALUES
from .vocab import BIG_FIVE, HOFSTEDE, STANCE
from .windows import denoise_in_windows

N_STANCE = len(STANCE)


@dataclass
class DenoiserConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    max_characters: int = DEFAULT_MAX_CHARACTERS
    max_beats: int = 64
    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 10.0
    p_mean: float = -1.2
    p_std: float = 1.2
    parameterisation: Literal["x", "eps", "edm"] = "edm"
    # Whether the description input was trained (on described characters); a sampler embeds
    # descriptions only for a network that reads them.
    reads_descriptions: bool = False
    # Whether it was trained with traits dropped alone (`TrainOptions.field_dropout`), so that a
    # character file without `<personality>` can be sampled as one whose traits are unknown.
    traits_optional: bool = False
    # Whether it denoises each stance's departure from the pair's static relation, and each mood's
    # departure from the character's baseline mood, rather than the values themselves (`scene_base`).
    # Checkpoints written before these settings load with False.
    stance_from_relations: bool = True
    mood_from_baseline: bool = True
    # The longest scene in its training data, in beats: beat positions past it were never learnt, so
    # longer scenes are denoised in windows of this many beats (`windows`). None (checkpoints written
    # before this setting): max_beats.
    trained_beats: int | None = None

    @property
    def window_beats(self) -> int:
        """How many beats the network denoises at once; a longer scene goes in overlapping windows."""
        return min(self.trained_beats or self.max_beats, self.max_beats)

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Raise ValueError naming the first setting no network can be built or sampled with."""
        sizes = {"width": self.width, "depth": self.depth, "heads": self.heads,
                 "max_characters": self.max_characters, "max_beats": self.max_beats}
        if self.trained_beats is not None:
            sizes["trained_beats"] = self.trained_beats
        for name, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not a multiple of heads {self.heads}")
        if self.parameterisation not in ("x", "eps", "edm"):
            raise ValueError(f"parameterisation must be x, eps or edm, got {self.parameterisation!r}")
        if not 0 < self.sigma_min < self.sigma_max or not self.sigma_data > 0:
            raise ValueError(f"noise levels must satisfy 0 < sigma_min < sigma_max and sigma_data > 0, got "
                             f"{self.sigma_min!r}, {self.sigma_max!r}, {self.sigma_data!r}")


class AdaLNZero(nn.Module):
    """Shift, scale and gate from the condition, zero-initialised so each block starts as identity (DiT)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mod = nn.Linear(width, 3 * width)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift, scale, gate = self.mod(F.silu(cond)).chunk(3, dim=-1)
        return self.norm(h) * (1 + scale) + shift, gate


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """h `[N, L, width]`; bias `[N, heads, L, L]` (−inf where a key is padding)."""
        n, length, width = h.shape
        q, k, v = self.qkv(h).reshape(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out(out.transpose(1, 2).reshape(n, length, width))


class Block(nn.Module):
    """Attention across beats, then across characters (pair-biased), then an MLP; each adaLN-zero."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ada = nn.ModuleList(AdaLNZero(width) for _ in range(3))
        self.beat_attn = Attention(width, heads)
        self.char_attn = Attention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, h: torch.Tensor, cond: torch.Tensor, beat_bias: torch.Tensor,
                char_bias: torch.Tensor) -> torch.Tensor:
        b, c, t, w = h.shape
        x, gate = self.ada[0](h, cond)
        h = h + gate * self.beat_attn(x.reshape(b * c, t, w), beat_bias).reshape(b, c, t, w)
        x, gate = self.ada[1](h, cond)
        x = x.transpose(1, 2).reshape(b * t, c, w)
        h = h + gate * self.char_attn(x, char_bias).reshape(b, t, c, w).transpose(1, 2)
        x, gate = self.ada[2](h, cond)
        return h + gate * self.mlp(x)


def pair_stance(x: torch.Tensor, c: int) -> torch.Tensor:
    """The stance block of a scene `[b, c, t, F]` as `[b, i, t, j, 3]`: i's stance toward j."""
    b, _, t, _ = x.shape
    return x[..., STANCE_START:STANCE_START + N_STANCE * c].reshape(b, c, t, c, N_STANCE)


STANCE_CONTEXT = 4 * N_STANCE


def stance_context(stance: torch.Tensor, beats: torch.Tensor) -> torch.Tensor:
    """A pair's noisy stance `[b, i, j, t, 3]` with, per beat, its value at the beat before and after
    and its mean over the scene's beats (`beats`: `[b, t]` 0/1): `[b, i, j, t, 12]`.

    Stance moves slowly (volatility rows bound each step), so at high noise a pair's neighbouring
    beats are the best evidence of its value; read per beat alone, the stance came out jumpier
    than any volatility row allows.
    """
    live = beats[:, None, None, :, None].to(stance.dtype)
    stance = stance * live
    before = F.pad(stance[..., :-1, :], (0, 0, 1, 0))
    after = F.pad(stance[..., 1:, :], (0, 0, 0, 1))
    mean = stance.sum(-2, keepdim=True) / live.sum(-2, keepdim=True).clamp_min(1)
    return torch.cat([stance, before, after, mean.expand_as(stance)], dim=-1)


def fourier_noise_embedding(c_noise: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding of the noise level (as in EDM's positional embedding)."""
    half = width // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=c_noise.device) / half)
    args = c_noise[:, None].float() * freqs[None] * 100
    return torch.cat([args.cos(), args.sin()], dim=-1)


class SceneTransformer(nn.Module):
    """The raw network F: (scaled noisy scene, noise level, condition) → output of the same shape."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        w = config.width
        self.config = config
        self.token_in = nn.Linear(TOKEN_VALUES + LIMIT_FEATURES, w)
        self.beat_pos = nn.Embedding(config.max_beats, w)
        self.noise_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        # Traits, culture and description, each times its mask, then the three masks: without the
        # masks, unknown traits (zeros) would read as the lowest traits on every axis.
        self.character_in = nn.Linear(len(BIG_FIVE) + len(HOFSTEDE) + EMBED_DIM + 3, w)
        self.null_character = nn.Parameter(torch.zeros(w))
        self.event_in = nn.Linear(len(EVENT_FEATURES), w)
        self.public_in = nn.Linear(1, w)
        self.source_in = nn.Linear(1, w)  # real text vs simulated; zero-initialised, so it starts as no change
        nn.init.zeros_(self.source_in.weight)
        nn.init.zeros_(self.source_in.bias)
        self.pair_in = nn.Sequential(nn.Linear(2 * N_STANCE + 1, w // 2), nn.SiLU(), nn.Linear(w // 2, config.heads * config.depth))
        self.blocks = nn.ModuleList(Block(w, config.heads) for _ in range(config.depth))
        self.final = AdaLNZero(w)
        self.token_out = nn.Linear(w, TOKEN_VALUES)
        # Reads each ordered pair's own noisy stance too (without it a skip-connected (EDM, ε)
        # parameterisation cannot tell the noise in a stance value from its signal), and its
        # temporal context: `stance_context`.
        self.pair_out = nn.Sequential(nn.Linear(2 * w + N_STANCE + STANCE_CONTEXT, w), nn.SiLU(), nn.Linear(w, N_STANCE))

    def _condition(self, cond: SceneCondition, c_noise: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
        """One conditioning vector per token: noise level + source + who the character is + what happens to them."""
        _, c, t, w = shape
        noise = self.noise_mlp(fourier_noise_embedding(c_noise, w))[:, None, None]
        masks = torch.stack([cond.trait_mask, cond.culture_mask, cond.description_mask], dim=-1)
        traits = torch.cat([cond.traits * cond.trait_mask[..., None], cond.culture * cond.culture_mask[..., None],
                            cond.description * cond.description_mask[..., None], masks], dim=-1)
        known = ((cond.trait_mask + cond.culture_mask + cond.description_mask) > 0).float()[..., None]
        who = known * self.character_in(traits) + (1 - known) * self.null_character
        events = self.event_in(cond.events[:, :c, :t]) * cond.event_mask[:, None, None]
        public = self.public_in(cond.publicness)[:, None, None] * cond.event_mask[:, None, None]
        source = self.source_in(cond.from_text)[:, None, None]
        return noise + source + who[:, :, None] + events + public

    def _biases(self, stance: torch.Tensor, cond: SceneCondition) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Attention biases from the noisy stance `[b, i, t, j, 3]`: padding masks, and per layer the pair terms."""
        b, c, t, _, _ = stance.shape
        heads, depth = self.config.heads, self.config.depth
        neg = torch.finfo(stance.dtype).min
        beat_ok = cond.beats[:, :t].bool()
        beat_bias = torch.zeros(b, t, device=stance.device, dtype=stance.dtype).masked_fill(~beat_ok, neg)
        beat_bias = beat_bias[:, None, None, None, :].expand(b, c, heads, t, t).reshape(b * c, heads, t, t)
        relation = cond.relations[:, :c, :c][:, :, None].expand(b, c, t, c, N_STANCE)
        self_pair = torch.eye(c, device=stance.device, dtype=stance.dtype)[None, :, None, :, None].expand(b, c, t, c, 1)
        pair = self.pair_in(torch.cat([stance, relation, self_pair], dim=-1))  # [b, c(i), t, c(j), heads*depth]
        char_ok = cond.characters[:, :c].bool()
        mask = torch.zeros(b, c, device=stance.device, dtype=stance.dtype).masked_fill(~char_ok, neg)
        pair = pair.permute(0, 2, 4, 1, 3) + mask[:, None, None, None, :]  # [b, t, heads*depth, i, j]
        per_layer = pair.reshape(b * t, depth, heads, c, c).unbind(1)
        return beat_bias, list(per_layer)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: SceneCondition) -> torch.Tensor:
        b, c, t, f = x.shape
        h = self.token_in(torch.cat([x[..., :TOKEN_VALUES], cond.limits[:, :c, :t]], dim=-1)) + self.beat_pos.weight[:t]
        cvec = self._condition(cond, c_noise, h.shape)
        stance_in = pair_stance(x, c)  # read once: the attention biases and the stance read-out both use it
        beat_bias, char_biases = self._biases(stance_in, cond)
        for block, char_bias in zip(self.blocks, char_biases):
            h = block(h, cvec, beat_bias, char_bias)
        x_out, _ = self.final(h, cvec)
        tokens = self.token_out(x_out)
        stance = self._stance(h, cond.relations[:, :c, :c], stance_context(stance_in.transpose(2, 3), cond.beats[:, :t]))
        stance = stance.permute(0, 1, 3, 2, 4).reshape(b, c, t, c * N_STANCE)
        pad = f - TOKEN_VALUES - c * N_STANCE
        return torch.cat([tokens, stance, x.new_zeros(b, c, t, pad)], dim=-1)

    def _stance(self, h: torch.Tensor, relations: torch.Tensor, stance: torch.Tensor) -> torch.Tensor:
        """`pair_out([h_i, h_j, relation_ij, context_ij])` for every ordered pair, `[b, i, j, t, 3]`.

        `stance` is `stance_context` of the scaled noisy input, `[b, i, j, t, 12]`. The first
        layer is linear in the concatenation, so it is applied to each token once and broadcast
        over pairs: the same function without a `[b, c, c, t, 2·width]` tensor.
        """
        first, activation, last = self.pair_out
        w_i, w_j, w_rel, w_stance = first.weight.split([h.shape[-1], h.shape[-1], N_STANCE, STANCE_CONTEXT], dim=1)
        own = F.linear(h, w_i, first.bias)[:, :, None]              # [b, i, 1, t, w]
        other = F.linear(h, w_j)[:, None]                           # [b, 1, j, t, w]
        relation = F.linear(relations, w_rel)[:, :, :, None]        # [b, i, j, 1, w]
        return last(activation(own + other + relation + F.linear(stance, w_stance)))


def scene_base(cond: SceneCondition, shape: torch.Size, config: DenoiserConfig) -> torch.Tensor | None:
    """`[b, c, t, F]`: what the condition says each value starts from, which the network denoises around.

    Each pair's static relation (`SceneCondition.relations`) in its stance slots, each
    character's baseline mood (`SceneCondition.mood`) in its mood slots, as the config asks; 0
    elsewhere; None when it asks for neither. Within a scene a stance stays near the relation
    the pair brings in (the simulator's anchor, the writer's band) and a mood is pulled back to
    its baseline (ALMA), so the network is asked only for the departures. Asked for the stance
    itself, it had to reproduce the relation through its read-out, and its samples ended 0.19
    (rms) from it where the data stay within 0.04; the baseline of a written `<mood>` it was not
    told at all (benchmarks/RESULTS.md, "Prior quality").
    """
    if not (config.stance_from_relations or config.mood_from_baseline):
        return None
    b, c, t, f = shape
    base = cond.relations.new_zeros(b, c, t, f)
    if config.mood_from_baseline:
        base[..., MOOD] = cond.mood[:, :c, None]
    if config.stance_from_relations:
        base[..., STANCE_START:STANCE_START + c * N_STANCE] = cond.relations[:, :c, None, :c].reshape(b, c, 1, -1)
    return base


class Denoiser(nn.Module):
    """D(x; σ): the preconditioned network that returns an estimate of the clean scene."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        self.net = SceneTransformer(config)

    def start_reading_descriptions(self) -> None:
        """Zero the description input's weights and mark it read, before training on described characters.

        An input the network was never trained on holds its random initial weights; zeroed,
        the network starts from exactly the function it was and learns the input from there.
        """
        with torch.no_grad():
            start = len(BIG_FIVE) + len(HOFSTEDE)
            self.net.character_in.weight[:, start:start + EMBED_DIM] = 0
        self.config = replace(self.config, reads_descriptions=True)

    def start_stance_from_relations(self) -> None:
        """Switch a network that predicts stance itself to predicting its departure from the relation.

        The stance read-out's last layer is zeroed, so the network starts by placing every stance
        on its pair's relation (the best guess the condition gives) and learns the departures
        from there; the rest of the network is unchanged.
        """
        with torch.no_grad():
            last = self.net.pair_out[-1]
            last.weight.zero_()
            last.bias.zero_()
        self.config = replace(self.config, stance_from_relations=True)

    def start_mood_from_baseline(self) -> None:
        """Switch a network that predicts mood itself to predicting its departure from the baseline.

        The mood outputs of the token read-out are zeroed, so the network starts by placing every
        mood on its character's baseline and learns the departures from there.
        """
        with torch.no_grad():
            self.net.token_out.weight[MOOD] = 0
            self.net.token_out.bias[MOOD] = 0
        self.config = replace(self.config, mood_from_baseline=True)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: SceneCondition) -> torch.Tensor:
        if x.shape[2] > self.config.window_beats:  # beat positions it never learnt: see DenoiserConfig
            return denoise_in_windows(self._window, x, sigma, cond, self.config.window_beats)
        return self._window(x, sigma, cond)

    def _window(self, x: torch.Tensor, sigma: torch.Tensor, cond: SceneCondition) -> torch.Tensor:
        """D(x; σ) for a scene of at most `window_beats` beats."""
        base = scene_base(cond, x.shape, self.config)
        if base is None:
            return self._denoise(x, sigma, cond)
        base = base.to(x.dtype)  # denoise the departures from it, then add it back
        return base + self._denoise(x - base, sigma, cond)

    def _denoise(self, x: torch.Tensor, sigma: torch.Tensor, cond: SceneCondition) -> torch.Tensor:
        sd = self.config.sigma_data
        sigma = sigma.reshape(-1, 1, 1, 1).to(x.dtype)
        c_in = 1 / (sigma ** 2 + sd ** 2).sqrt()  # EDM Table 1
        c_noise = sigma.log().flatten() / 4
        out = self.net(c_in * x, c_noise, cond)
        kind = self.config.parameterisation
        if kind == "x":  # Li & He 2025: the network predicts the clean scene directly
            return out
        if kind == "eps":  # ε-prediction: x0 = x − σ·ε
            return x - sigma * out
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)  # EDM's full preconditioning
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
        return c_skip * x + c_out * out

    def loss(self, x0: torch.Tensor, mask: torch.Tensor, cond: SceneCondition,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """EDM's loss: log-normal σ, weight (σ² + σ_d²)/(σ·σ_d)², squared error on observed variables only."""
        cfg = self.config
        b = x0.shape[0]
        normal = torch.randn(b, generator=generator, device=x0.device)
        sigma = (normal * cfg.p_std + cfg.p_mean).exp()
        noise = torch.randn(x0.shape, generator=generator, device=x0.device) * sigma.reshape(-1, 1, 1, 1)
        weight = ((sigma ** 2 + cfg.sigma_data ** 2) / (sigma * cfg.sigma_data) ** 2).reshape(-1, 1, 1, 1)
        denoised = self(x0 + noise * mask, sigma, cond)
        err = weight * (denoised - x0) ** 2 * mask
        return err.sum() / mask.sum().clamp_min(1)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


assert n_features(DEFAULT_MAX_CHARACTERS) == STANCE_START + N_STANCE * DEFAULT_MAX_CHARACTERS
