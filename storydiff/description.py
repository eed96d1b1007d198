"""Written descriptions of simulated characters, so the denoiser learns to read a writer's prose.

A writer describes a character in words ("quick to laugh and quicker to promise") far more
often than in Big Five numbers. The denoiser reads a MiniLM embedding of that description;
to learn what the words mean it needs scenes whose characters are described, so the
simulator writes a short description of each character from what drives its behaviour:
its traits (in the adjectives and the sentences personality psychology measures them
with, so that both a list of adjectives and a writer's prose are read), its temperament
(its baseline mood) and the emotions it never or always feels. The words are drawn at
random, with more extreme traits more likely to be mentioned and qualified more strongly,
so a description is evidence about a character, as a writer's is, not a code for it.
"""
from __future__ import annotations

import numpy as np

from .affect import default_mood
from .models import Character
from .vocab import BIG_FIVE, PAD

# Saucier (1994), "Mini-Markers: a brief version of Goldberg's unipolar Big-Five markers",
# J. Personality Assessment 63(3): 506-516 — the 40 adjectives, by factor and pole. Neuroticism's high
# pole is the Mini-Markers' low emotional stability.
MARKERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # trait: (low pole, high pole)
    "openness": (("uncreative", "unintellectual", "unimaginative", "incurious"),
                 ("creative", "imaginative", "intellectual", "philosophical", "deep", "complex")),
    "conscientiousness": (("careless", "disorganised", "inefficient", "sloppy"),
                          ("organised", "efficient", "systematic", "practical")),
    "extraversion": (("quiet", "shy", "bashful", "withdrawn"),
                     ("talkative", "bold", "energetic", "extraverted")),
    "agreeableness": (("cold", "harsh", "rude", "unsympathetic"),
                      ("warm", "kind", "sympathetic", "cooperative")),
    "neuroticism": (("relaxed", "unenvious", "calm", "even-tempered"),
                    ("moody", "jealous", "envious", "temperamental", "touchy", "fretful")),
}
# Goldberg's 50 IPIP Big-Five factor markers (Goldberg 1992, Psychological Assessment 4(1): 26-42;
# items from ipip.ori.org, public domain; Goldberg et al. 2006, J. Research in Personality 40: 84-96),
# by factor and pole, in the third person: how writers say it in sentences rather than adjectives.
ITEMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # trait: (low pole, high pole)
    "openness": (("has difficulty understanding abstract ideas", "is not interested in abstract ideas",
                  "does not have a good imagination"),
                 ("has a vivid imagination", "has excellent ideas", "is quick to understand things",
                  "spends time reflecting on things", "is full of ideas", "has a rich vocabulary")),
    "conscientiousness": (("leaves their belongings around", "makes a mess of things",
                           "often forgets to put things back in their proper place", "shirks their duties"),
                          ("is always prepared", "pays attention to details", "gets chores done right away",
                           "likes order", "follows a schedule", "is exacting in their work")),
    "extraversion": (("doesn't talk a lot", "keeps in the background", "has little to say",
                      "doesn't like to draw attention to themselves", "is quiet around strangers"),
                     ("is the life of the party", "feels comfortable around people", "starts conversations",
                      "talks to a lot of different people at parties", "doesn't mind being the centre of attention")),
    "agreeableness": (("feels little concern for others", "insults people", "is not interested in other people's problems",
                       "is not really interested in others"),
                      ("is interested in people", "sympathises with others' feelings", "has a soft heart",
                       "takes time out for others", "feels others' emotions", "makes people feel at ease")),
    "neuroticism": (("is relaxed most of the time", "seldom feels blue"),
                    ("gets stressed out easily", "worries about things", "is easily disturbed", "gets upset easily",
                     "changes mood a lot", "has frequent mood swings", "gets irritated easily", "often feels blue")),
}
# Mehrabian (1996), "Pleasure-arousal-dominance: a general framework for describing and measuring
# individual differences in temperament", Current Psychology 14(4): the octants of PAD temperament.
TEMPERAMENT = {(1, 1, 1): "exuberant", (-1, -1, -1): "bored", (1, 1, -1): "dependent",
               (-1, -1, 1): "disdainful", (1, -1, 1): "relaxed", (-1, 1, -1): "anxious",
               (1, -1, -1): "docile", (-1, 1, 1): "hostile"}
NEVER_PHRASES = {"gloating": "never gloats", "resentment": "never begrudges anyone their luck",
                 "pity": "has no pity in them", "happy-for": "takes no joy in anyone else's luck",
                 "shame": "is never ashamed of anything", "fear": "is afraid of nothing"}
ALWAYS_PHRASES = {"fear": "a born worrier", "hope": "always hoping for something",
                  "distress": "never quite free of some grief"}
# Occupations and ages carry no information about behaviour in the simulator: they make the
# descriptions read like a writer's, so the network learns to look past them.
ROLES = ("net-mender", "harbour clerk", "skipper", "widow", "merchant", "schoolteacher", "priest",
         "soldier", "innkeeper", "doctor", "lawyer", "farmer", "cook", "student", "nurse", "pilot",
         "shopkeeper", "magistrate", "sailor", "painter", "carpenter", "banker", "fishwife", "clerk")
ITEMS_P = 0.5  # a mentioned trait is a phrase (ITEMS) this often, else an adjective (MARKERS)
MENTION_FROM = 0.1   # a trait this close to the midpoint (0.5) is never mentioned
STRONG, MILD = 0.32, 0.2  # "very" beyond STRONG from the midpoint, "somewhat" within MILD
TEMPERAMENT_FROM = 0.15  # a baseline mood this far from neutral on every axis gets its octant's name


def _trait_words(rng: np.random.Generator, character: Character) -> tuple[list[str], list[str]]:
    """Adjectives and phrases for the traits far enough from the midpoint, each trait mentioned with
    a probability growing with its distance, as an adjective or (ITEMS_P) as a phrase."""
    words, phrases = [], []
    for trait in BIG_FIVE:
        offset = getattr(character.personality, trait) - 0.5
        if abs(offset) < MENTION_FROM or rng.random() > 2 * abs(offset) + 0.2:
            continue
        if rng.random() < ITEMS_P:
            phrases.append(str(rng.choice(ITEMS[trait][offset > 0])))
            continue
        qualifier = "very " if abs(offset) > STRONG else "somewhat " if abs(offset) < MILD else ""
        words.append(qualifier + str(rng.choice(MARKERS[trait][offset > 0])))
    rng.shuffle(words)
    rng.shuffle(phrases)
    return words, phrases


def _temperament(character: Character) -> str | None:
    mood = character.mood.model_dump() if character.mood else dict(zip(PAD, default_mood(character.personality), strict=True))
    values = [mood[d] for d in PAD]
    if min(abs(v) for v in values) < TEMPERAMENT_FROM:
        return None
    return TEMPERAMENT[tuple(1 if v > 0 else -1 for v in values)]


def _range_phrases(character: Character) -> list[str]:
    out = []
    for r in character.ranges:
        if r.never and r.emotion in NEVER_PHRASES:
            out.append(NEVER_PHRASES[r.emotion])
        elif r.min > 0 and r.emotion in ALWAYS_PHRASES:
            out.append(ALWAYS_PHRASES[r.emotion])
    return out


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def describe(rng: np.random.Generator, character: Character) -> str:
    """A few sentences about a simulated character, e.g. "A clerk of 34: shy. Worries about things. A born worrier."."""
    role, age = str(rng.choice(ROLES)), int(rng.integers(18, 80))
    words, phrases = _trait_words(rng, character)
    temperament = _temperament(character)
    if temperament and rng.random() < 0.6:
        words.append(f"{temperament} by temperament")
    opening = f"{'An' if role[0] in 'aeiou' else 'A'} {role} of {age}"
    if words and rng.random() < 0.5:
        text = f"{opening}: {_join(words)}."
    elif words:
        text = f"{opening}. {_join(words).capitalize()}."
    else:
        text = f"{opening}."
    for sentence in (phrases, _range_phrases(character)):
        if sentence:
            text += " " + _sentence(_join(sentence))
    return text


def _sentence(clause: str) -> str:
    return clause[0].upper() + clause[1:] + "."
