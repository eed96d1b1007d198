"""JSON: the `Scene` model itself, so every field round-trips; several scenes as `{"scenes": [...]}`."""
from __future__ import annotations

import json

from pydantic import BaseModel

from ..scene import Scene
from .scenes import SceneOrScenes, as_list


class SceneList(BaseModel):
    """The JSON document for several scenes."""

    scenes: list[Scene]


def to_json(scenes: SceneOrScenes) -> str:
    """One scene as its model dump; a list as `{"scenes": [...]}` (2-space indent)."""
    if isinstance(scenes, Scene):
        return scenes.model_dump_json(indent=2) + "\n"
    return SceneList(scenes=as_list(scenes)).model_dump_json(indent=2) + "\n"


def from_json(text: str) -> Scene | list[Scene]:
    """Read what `to_json` wrote: a Scene, or a list of them for a `{"scenes": [...]}` document."""
    data = json.loads(text)
    if isinstance(data, dict) and set(data) == {"scenes"}:
        return SceneList.model_validate(data).scenes
    return Scene.model_validate(data)
