"""Does the prior use what it is told about the characters? Traits against written descriptions.

For held-out simulated situations, sample one scene per situation, unprojected, under five
conditions that differ only in what the network is told about each character: traits and
description; the traits alone; the description alone (traits unknown, as for a character file with no
`<personality>`, whose baseline mood is then Mehrabian's for average traits unless it writes one);
neither (traits and description unknown, events and relations kept); and
the null condition (nothing). Who a character is shows in their levels over a scene (the
neurotic stay distressed longer, the agreeable like more), so the figure is the squared
error between each character's mean felt | shown | mood over the scene and the held-out
scene's, averaged over characters. Floor: the same situation simulated again with fresh
noise. A description that the network reads moves the "description alone" row from the
"neither" row toward the "traits and description" row.

    python benchmarks/conditioning.py [--checkpoint PATH] [--n 96] [--device cpu]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch
from heldout import held_out_scene, resimulated_scene

from storydiff.conditioning import SceneCondition
from storydiff.engine import Engine
from storydiff.layout import MOOD
from storydiff.models import Cast, Personality


def _told(cond: SceneCondition, what: str, untraited: SceneCondition) -> SceneCondition:
    """`cond` with what `what` leaves out dropped; unknown traits also take the baseline moods
    of `untraited` (the cast with average traits), so that Mehrabian's mood of the real traits
    cannot tell the network what the traits were."""
    if what == "nothing (null condition)":
        return cond.null()
    drop = {"traits alone": ("description_mask",), "description alone": ("trait_mask",),
            "neither": ("trait_mask", "description_mask")}.get(what, ())
    cond = replace(cond, **{name: torch.zeros_like(getattr(cond, name)) for name in drop})
    return replace(cond, mood=untraited.mood.to(cond.mood)) if "trait_mask" in drop else cond


def _average_traits(cast: Cast) -> Cast:
    """The cast as files without `<personality>` give it (written moods stay written)."""
    characters = {cid: c.model_copy(update={"personality": Personality()}) for cid, c in cast.characters.items()}
    return cast.model_copy(update={"characters": characters})


def level_error(scene: torch.Tensor, truth: torch.Tensor, characters: int, beats: int) -> torch.Tensor:
    """Per character: mean squared difference of the scene-mean felt | shown | mood levels."""
    levels = [s[:characters, :beats, : MOOD.stop].mean(dim=1) for s in (scene, truth)]
    return ((levels[0] - levels[1]) ** 2).mean(dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--n", type=int, default=96, help="held-out situations")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    engine = Engine.load(args.checkpoint, args.device) if args.checkpoint else Engine.default(args.device)
    conditions = ("traits and description", "traits alone", "description alone", "neither", "nothing (null condition)")
    errors: dict[str, list[torch.Tensor]] = {name: [] for name in ("same situation, simulated again", *conditions)}
    began = time.perf_counter()
    for k in range(args.n):
        cast, situation, truth = held_out_scene(k)
        C, T = len(situation.cast), situation.beats
        errors["same situation, simulated again"].append(level_error(resimulated_scene(k, cast, situation), truth, C, T))
        untraited = SceneCondition.stack([engine.condition(_average_traits(cast), situation)], C, T)
        for what in conditions:
            run = engine.prepare(situation, cast=cast, seed=k, steps=args.steps, project=False)
            run.condition = _told(run.condition, what, untraited)
            step = None
            for step in engine.denoise(run):
                pass
            errors[what].append(level_error(step.projected[0].cpu(), truth, C, T))
    print(f"checkpoint {engine.checkpoint} (reads descriptions: {engine.model.config.reads_descriptions}) · "
          f"{args.n} held-out situations · {time.perf_counter() - began:.0f} s")
    print(f"{'told about each character':34s} {'level error':>12s} {'× floor':>8s}")
    floor = float(torch.cat(errors["same situation, simulated again"]).mean())
    for name, values in errors.items():
        error = float(torch.cat(values).mean())
        print(f"{name:34s} {error:12.5f} {error / floor:8.1f}")


if __name__ == "__main__":
    main()
