"""How plausible are sampled scenes? Energy distance to held-out simulator scenes (DESIGN §5).

For held-out simulated situations (seeds the training corpus never used), sample one
scene per situation and compare it with the held-out scenes on three features: per
character, *transitions* (felt | shown | mood at beat b and b+1, 94 numbers) and *changes*
(the same 47 values at b+1 minus at b); per ordered pair, *stance* (liking, dominance,
trust at b and b+1). Shuffling a scene's beats keeps every beat's levels, and levels make
up most of a transition, so only the changes show whether a prior has an arc. Per situation,
the *level error*: how far each character's scene-mean mood and each pair's scene-mean stance
sit from the held-out scene's (rms), which shows whether the prior reads the baseline moods and
relations the characters bring in.
Reference points, in the same run: the same held-out situations simulated again with
fresh noise (what a prior that had learnt the simulator's conditional distribution would
reach), the training corpus's own distance to the held-out set (scenes of other
situations), and the same training scenes with their beats shuffled (a prior with no
sense of time). Also: how often an unprojected sample breaks a hard constraint,
nearest-neighbour memorisation, and the denoiser's own error on the held-out scenes per
noise level and feature group (the training loss's figure, free of the sampler and far less
noisy than a distance between samples: where two checkpoints' samples differ by less than
the run-to-run spread, this says which denoiser is closer).
With `--text-heldout` (and `--text-train`), the same comparison on held-out real plays
(`text_quality.py`).

    python benchmarks/prior_quality.py [--checkpoint PATH] [--n 64] [--corpus DIR] [--device cpu]
        [--text-heldout SHARD] [--text-train SHARD]
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from heldout import changes, held_out_scene, levels, resimulated_scene, stance_transitions, transitions
from text_quality import text_rows

from storydiff.conditioning import SceneCondition
from storydiff.engine import Engine
from storydiff.layout import FELT, MOOD, SHOWN, STANCE_START
from storydiff.metrics import energy_distance, memorisation_ratio, shuffle_beats
from storydiff.polytope import Polytope
from storydiff.simulator import layout_for

Scenes = list[tuple[torch.Tensor, int, int]]  # (scene [C, T, F], characters, beats)


def features(scenes: Scenes, feature: Callable[[torch.Tensor, int, int], torch.Tensor]) -> torch.Tensor:
    return torch.cat([feature(x, C, T) for x, C, T in scenes])


def family(row: str) -> str:
    """A row's rule family from its name: `box:…`, `mara.range.…`, `culture:…`, `event:…`, `pin:…`."""
    head = row.split("@")[0].split(".")
    return head[0].split(":")[0] if ":" in head[0] else head[1]


def family_violations(polytope: Polytope, y: torch.Tensor) -> dict[str, float]:
    """Largest violation (scaled by row norm) per rule family of one flat sample `[1, columns]`."""
    ay = (polytope.A @ y.double().T).T[0]
    over = ((polytope.lower - ay).clamp_min(0) + (ay - polytope.upper).clamp_min(0)) / polytope.row_norms()
    out: dict[str, float] = {}
    for name, v in zip(polytope.names, over.tolist(), strict=True):
        key = family(name)
        out[key] = max(out.get(key, 0.0), v)
    return out


def level_errors(scenes: Scenes, held: Scenes) -> tuple[float, float]:
    """Root-mean-square difference of scene-mean mood and stance (`heldout.levels`), scene by scene."""
    pairs = [(levels(*a), levels(*b)) for a, b in zip(scenes, held, strict=True)]
    mood = torch.cat([a[0] - b[0] for a, b in pairs])
    stance = torch.cat([a[1] - b[1] for a, b in pairs])
    return float(mood.pow(2).mean().sqrt()), float(stance.pow(2).mean().sqrt())


GROUPS = {"felt": FELT, "shown": SHOWN, "mood": MOOD, "stance": slice(STANCE_START, None)}
ERROR_SIGMAS = (0.05, 0.2, 0.5, 1.0, 2.0)


@torch.no_grad()
def denoising_errors(engine: Engine, n: int, seed: int = 0) -> dict[tuple[float, str], float]:
    """Mean squared error of D(x + σ·ε; σ) against x on n held-out scenes, per (σ, feature group);
    the same noise for every checkpoint given the same seed."""
    generator = torch.Generator().manual_seed(seed)
    sums = {key: [0.0, 0.0] for key in ((s, g) for s in ERROR_SIGMAS for g in GROUPS)}
    for k in range(n):
        cast, situation, x = held_out_scene(k)
        cond = SceneCondition.stack([engine.condition(cast, situation)], *x.shape[:2]).to(engine.device)
        x0, mask = x[None].float().to(engine.device), layout_for(situation).mask()[None].float().to(engine.device)
        for sigma in ERROR_SIGMAS:
            noise = torch.randn(x0.shape, generator=generator).to(engine.device) * sigma
            err = (engine.model(x0 + noise * mask, torch.full((1,), sigma, device=engine.device), cond) - x0) ** 2 * mask
            for group, columns in GROUPS.items():
                sums[(sigma, group)][0] += float(err[..., columns].sum())
                sums[(sigma, group)][1] += float(mask[..., columns].sum())
    return {key: total / count for key, (total, count) in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=64, help="held-out situations")
    parser.add_argument("--corpus", default=None, help="training corpus folder (for the training-data rows and memorisation)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--sampler", default="heun")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--text-heldout", default=None, help="shard of held-out plays' scenes")
    parser.add_argument("--text-train", default=None, help="shard of the training plays' scenes")
    args = parser.parse_args()
    engine = Engine.load(args.checkpoint, args.device) if args.checkpoint else Engine.default(args.device)
    held, projected, raw, resimulated, violations = [], [], [], [], []
    began = time.perf_counter()
    for k in range(args.n):
        cast, situation, x = held_out_scene(k)
        C, T = len(situation.cast), situation.beats
        held.append((x, C, T))
        resimulated.append((resimulated_scene(k, cast, situation), C, T))
        run = engine.prepare(situation, cast=cast, seed=k, steps=args.steps, sampler=args.sampler)
        for with_projection, out in ((True, projected), (False, raw)):
            run.project = with_projection
            step = None
            for step in engine.denoise(run):
                pass
            out.append((step.projected[0].cpu(), C, T))
            if not with_projection:
                violations.append(family_violations(run.polytope, run.layout.flatten(step.projected.double().cpu())))
    rows = [("samples, projected", projected), ("samples, unprojected", raw),
            ("same situations, simulated again", resimulated)]
    if args.corpus:
        from storydiff.corpus import iterate_corpus

        train, shuffled = [], []
        g = torch.Generator().manual_seed(0)
        for x, mask, cond in iterate_corpus(args.corpus):
            for i in range(min(len(x), args.n)):
                C, T = int(cond.characters[i].sum()), int(cond.beats[i].sum())
                train.append((x[i], C, T))
                shuffled.append((shuffle_beats(x[i : i + 1, :C, :T], g)[0], C, T))
            break
        rows += [("training data itself", train), ("training data, beats shuffled", shuffled)]
        memo = memorisation_ratio(features(projected, transitions)[:2000], features(train, transitions))
        print(f"memorisation: median nearest/second-nearest ratio {float(memo.median()):.3f} "
              f"(fraction < 1/3: {float((memo < 1 / 3).double().mean()):.3f})")
    print(f"checkpoint {engine.checkpoint} · {args.sampler} {args.steps} steps · {args.n} held-out situations "
          f"· {time.perf_counter() - began:.0f} s")
    print(f"{'energy distance to held-out scenes':34s} {'transitions':>12s} {'changes':>9s} {'stance':>9s}")
    kinds = (transitions, changes, stance_transitions)
    targets = [features(held, f) for f in kinds]
    for name, scenes in rows:
        figures = [energy_distance(features(scenes, f), target) for f, target in zip(kinds, targets, strict=True)]
        print(f"{name:34s} {figures[0]:12.4f} {figures[1]:9.4f} {figures[2]:9.4f}")
    print(f"{'level error vs the same situation (rms)':34s} {'mood':>12s} {'stance':>9s}")
    for name, scenes in rows[:3]:
        mood, stance = level_errors(scenes, held)
        print(f"{name:34s} {mood:12.4f} {stance:9.4f}")
    if args.text_heldout:
        print(f"{'held-out plays, observed beats':34s} {'transitions':>12s} {'changes':>9s} {'beat memory':>12s}")
        for name, (t, c, memory) in text_rows(engine, args.text_heldout, args.text_train, args.sampler, args.steps):
            print(f"{name:34s} {t:12.4f} {c:9.4f} {memory:12.4f}")
    v = np.array([max(per_family.values()) for per_family in violations])
    print(f"unprojected samples breaking a hard constraint (> 1e-6): {float((v > 1e-6).mean()):.2f}; "
          f"median max violation {float(np.median(v)):.3f}")
    print(f"{'rule family':34s} {'breaking it':>12s} {'median violation':>17s}")
    for name in sorted({k for per_family in violations for k in per_family}):
        f = np.array([per_family.get(name, 0.0) for per_family in violations])
        broken = f[f > 1e-6]
        print(f"{name:34s} {broken.size / f.size:12.2f} {float(np.median(broken)) if broken.size else 0.0:17.3f}")
    errors = denoising_errors(engine, args.n)
    print("denoiser's squared error on the held-out scenes, ×1e4 (per noise level σ)")
    print(f"{'σ':>6s} " + " ".join(f"{g:>8s}" for g in GROUPS))
    for sigma in ERROR_SIGMAS:
        print(f"{sigma:6.2f} " + " ".join(f"{1e4 * errors[(sigma, g)]:8.1f}" for g in GROUPS))


if __name__ == "__main__":
    main()
