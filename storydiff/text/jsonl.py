"""Scenes as JSON Lines, the project's own text format (docs/text-formats.md): read and write.

One scene per line: `play`, `play_title`, `act`, `scene`, `index`, and `events`,
each either `{"direction": str}` or `{"speakers": [...], "lines": [...], "directions": [...]}`.
Directions inside a speech take effect after it is spoken.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from ..errors import StorydiffError
from .scene import Speech, TextScene
from .stage import Stage


def _open(path: Path, mode: str) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_jsonl(path: Path | str) -> list[TextScene]:
    """All scenes of a `.jsonl` or `.jsonl.gz` file; entrances are matched against each play's speakers.

    A line that is not a scene is a StorydiffError at `path:line`, never a traceback.
    """
    path = Path(path)
    try:
        with _open(path, "r") as f:
            records = [(n, _record(line, path, n)) for n, line in enumerate(f, start=1) if line.strip()]
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise StorydiffError(f"{path}: not UTF-8 JSON Lines ({e}); write one scene per line "
                             "(docs/text-formats.md)") from None
    speakers: dict[str, set[str]] = {}
    for n, rec in records:
        for event in rec["events"]:
            speakers.setdefault(rec["play"], set()).update(event.get("speakers", []))
    scenes = []
    for n, rec in records:
        try:
            scenes.append(_scene(rec, n, speakers.get(rec["play"], set()), str(path)))
        except (KeyError, TypeError, AttributeError) as e:
            raise StorydiffError(f"{path}:{n}: an event of this scene is malformed ({type(e).__name__}: {e}); "
                                 "each is {\"direction\": …} or {\"speakers\": [...], \"lines\": [...]}") from None
    return scenes


def _record(line: str, path: Path, n: int) -> dict:
    """One line's scene, checked as far as reading it needs: an object with a `play` and a list of events."""
    try:
        rec = json.loads(line.rstrip())
    except json.JSONDecodeError as e:
        raise StorydiffError(f"{path}:{n}:{e.colno}: not valid JSON ({e.msg}); each line holds one scene") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("play"), str) or \
            not isinstance(rec.get("events", []), list) or not all(isinstance(e, dict) for e in rec.get("events", [])):
        raise StorydiffError(f"{path}:{n}: a scene is an object with a \"play\" name and a list of \"events\" "
                             "objects (docs/text-formats.md)")
    rec.setdefault("events", [])
    return rec


def _scene(rec: dict, line: int, speakers: set[str], source: str) -> TextScene:
    stage = Stage(speakers)
    scene = TextScene(play=rec["play"], title=rec.get("play_title", rec["play"]),
                      scene=", ".join(p for p in (rec.get("act", ""), rec.get("scene", "")) if p), source=source)
    for event in rec.get("events", []):
        if "direction" in event:
            stage.direct(event["direction"])
            continue
        who = tuple(event["speakers"])
        stage.speak(who)
        text = " ".join(s.strip() for s in event.get("lines", []) if s.strip())
        if text:
            scene.speeches.append(Speech(who, text, line, frozenset(stage.present)))
        for direction in event.get("directions", []):
            stage.direct(direction)
    return scene


def write_jsonl(scenes: Iterable[TextScene], path: Path | str) -> None:
    """Write scenes in the project format; entrances and exits are written as directions, so reading back
    gives the same on-stage sets."""
    path = Path(path)
    counts: dict[str, int] = {}
    with _open(path, "w") as f:
        for scene in scenes:
            index = counts.get(scene.play, 0)
            counts[scene.play] = index + 1
            record = {"play": scene.play, "play_title": scene.title, "act": "", "scene": scene.scene,
                      "index": index, "events": _events(scene)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _events(scene: TextScene) -> list[dict]:
    events: list[dict] = []
    present: frozenset[str] = frozenset()
    for speech in scene.speeches:
        arriving = sorted(speech.on_stage - present - set(speech.characters))
        leaving = sorted(present - speech.on_stage)
        if leaving:
            events.append({"direction": "Exeunt " + " and ".join(leaving)})
        if arriving:
            events.append({"direction": "Enter " + " and ".join(arriving)})
        events.append({"speakers": list(speech.speakers), "lines": [speech.text]})
        present = speech.on_stage
    return events
