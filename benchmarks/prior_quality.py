"""How plausible are sampled scenes? Energy distance to held-out simulator scenes (DESIGN §5).

For held-out simulated situations (seeds the training corpus never used), sample one
scene per situation and compare *transitions* — a character's felt | shown | mood at
beat b and b+1, 94 numbers — between generated and held-out scenes. Transitions, not
single beats, so that a shuffled-beats baseline (right marginals, no arc) is penalised.
Reference points, in the same run: the training corpus's own distance to the held-out
set (the floor the prior can hope for) and the same training scenes with their beats
shuffled (the ceiling a prior with no sense of time would reach). Also: how often an
unprojected sample breaks a hard constraint, and nearest-neighbour memorisation.
With `--text-heldout` (and `--text-train`), the same comparison on held-out real plays
(`text_quality.py`).

    python benchmarks/prior_quality.py [--checkpoint PATH] [--n 64] [--corpus DIR] [--device cpu]
        [--text-heldout SHARD] [--text-train SHARD]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from heldout import held_out_scene, transitions
from text_quality import text_rows

from storydiff.engine import Engine
from storydiff.metrics import energy_distance, memorisation_ratio, shuffle_beats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=64, help="held-out situations")
    parser.add_argument("--corpus", default=None, help="training corpus folder (for the floor and memorisation)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--sampler", default="heun")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--text-heldout", default=None, help="shard of held-out plays' scenes")
    parser.add_argument("--text-train", default=None, help="shard of the training plays' scenes")
    args = parser.parse_args()
    engine = Engine.load(args.checkpoint, args.device) if args.checkpoint else Engine.default(args.device)
    held, projected, raw, violations = [], [], [], []
    began = time.perf_counter()
    for k in range(args.n):
        cast, situation, x = held_out_scene(k)
        C, T = len(situation.cast), situation.beats
        held.append(transitions(x, C, T))
        run = engine.prepare(situation, cast=cast, seed=k, steps=args.steps, sampler=args.sampler)
        for with_projection, out in ((True, projected), (False, raw)):
            run.project = with_projection
            step = None
            for step in engine.denoise(run):
                pass
            out.append(transitions(step.projected[0].cpu(), C, T))
            if not with_projection:
                flat = run.layout.flatten(step.projected.double().cpu())
                violations.append(float(run.polytope.violation(flat).max()))
    held_t, ours, ours_raw = torch.cat(held), torch.cat(projected), torch.cat(raw)
    rows = [("samples, projected", energy_distance(ours, held_t)),
            ("samples, unprojected", energy_distance(ours_raw, held_t))]
    if args.corpus:
        from storydiff.corpus import iterate_corpus

        train = []
        shuffled = []
        g = torch.Generator().manual_seed(0)
        for x, mask, cond in iterate_corpus(args.corpus):
            for i in range(min(len(x), args.n)):
                C, T = int(cond.characters[i].sum()), int(cond.beats[i].sum())
                train.append(transitions(x[i], C, T))
                shuffled.append(transitions(shuffle_beats(x[i : i + 1, :C, :T], g)[0], C, T))
            break
        train_t = torch.cat(train)
        rows.append(("training data itself", energy_distance(train_t, held_t)))
        rows.append(("training data, beats shuffled", energy_distance(torch.cat(shuffled), held_t)))
        memo = memorisation_ratio(ours[:2000], train_t)
        print(f"memorisation: median nearest/second-nearest ratio {float(memo.median()):.3f} "
              f"(fraction < 1/3: {float((memo < 1 / 3).double().mean()):.3f})")
    print(f"checkpoint {engine.checkpoint} · {args.sampler} {args.steps} steps · {args.n} held-out situations "
          f"· {time.perf_counter() - began:.0f} s")
    print(f"{'':34s} energy distance to held-out transitions")
    for name, value in rows:
        print(f"{name:34s} {value:8.4f}")
    if args.text_heldout:
        print(f"{'':34s} energy distance to held-out plays' observed transitions")
        for name, value in text_rows(engine, args.text_heldout, args.text_train, args.sampler, args.steps):
            print(f"{name:34s} {value:8.4f}")
    v = np.array(violations)
    print(f"unprojected samples breaking a hard constraint (> 1e-6): {float((v > 1e-6).mean()):.2f}; "
          f"median max violation {float(np.median(v)):.3f}")


if __name__ == "__main__":
    main()
