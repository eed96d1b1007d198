"""Three NPCs for 50 beats: a game loop that drives storydiff agents and prints their moods.

Mara, Ilan and Leonor (the bundled `mending-nets` scene) play its nine scripted beats, then go
on into open-ended play while the game throws events at them. Each frame the game reads every
character's mood (pleasure, arousal, dominance) and the behaviour picked from their repertoire.

    python examples/game_loop.py
"""
from __future__ import annotations

import time

import torch

import storydiff
from storydiff import Appraisal, Event
from storydiff.loader import bundled_library, load_characters, load_situation

# What the game does to the characters, by beat.
CAST = ("mara", "ilan", "leonor")
SCRIPT = {
    14: Event(id="squall", status="prospective", text="Black cloud over the point: a squall comes.",
              appraisals=[Appraisal(character=c, desirability=-0.6, likelihood=0.8) for c in CAST]),
    22: Event(id="catch", text="The Estrela comes in low in the water with cod.",
              appraisals=[Appraisal(character="ilan", desirability=0.8),
                          Appraisal(character="leonor", desirability=0.6),
                          Appraisal(character="mara", desirability=0.4)]),
    31: Event(id="taunt", agent="ilan", target="mara",
              text="Ilan mocks Mara's pilotage in front of the crew.",
              appraisals=[Appraisal(character="mara", desirability=-0.7, praiseworthiness=-0.8),
                          Appraisal(character="leonor", desirability=-0.3, praiseworthiness=-0.5)]),
    40: Event(id="letter", text="A letter: the Banks boats are safe.",
              appraisals=[Appraisal(character=c, desirability=0.9) for c in CAST]),
}


def main() -> None:
    torch.set_num_threads(1)  # one small scene per call: a single thread is fastest and steadiest
    began = time.perf_counter()
    library = bundled_library()
    cast = load_characters(library)
    situation = load_situation(library / "situations" / "mending-nets.situation.xml", cast)
    engine = storydiff.Engine.default("cpu")
    agent = engine.agent(situation, seed=7)
    print(f"{situation.title}: {', '.join(agent.cast_ids)}; mood as pleasure/arousal/dominance")
    loop = time.perf_counter()
    for beat in range(1, 51):
        if beat in SCRIPT:
            agent.observe(SCRIPT[beat])
        played = agent.next_beat()
        cells = "  ".join(f"{c.character:6s} {c.mood['pleasure']:+.2f}/{c.mood['arousal']:+.2f}/"
                          f"{c.mood['dominance']:+.2f} {c.behaviour or '-':14s}" for c in played.cells)
        events = f"  <- {', '.join(played.events)}" if played.events else ""
        print(f"beat {played.beat:2d}  {cells}{events}")
    per_beat = 1000 * (time.perf_counter() - loop) / 50
    print(f"50 beats in {time.perf_counter() - began:.1f} s ({per_beat:.0f} ms per beat; "
          "the total includes loading the model)")


if __name__ == "__main__":
    main()
