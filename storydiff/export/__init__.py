"""Every output format of a sampled scene (DESIGN §7), and the atomic write they all go through.

`export(scenes, fmt)` renders one Scene or a list (a story, or n samples) as
`text`, `json`, `emotionml`, `fountain` or `ink`; `write_atomic(path, text)`
puts it on disk without ever leaving a truncated file.
"""
from __future__ import annotations

from collections.abc import Callable

from ..fileio import write_atomic
from ..render import render_beat_sheet, render_beat_sheets
from ..scene import Scene
from .emotionml import from_emotionml, to_emotionml
from .fountain import to_fountain
from .ink import to_ink
from .json import from_json, to_json
from .scenes import SceneOrScenes, as_list

__all__ = ["FORMATS", "SceneOrScenes", "export", "from_emotionml", "from_json", "to_emotionml", "to_fountain",
           "to_ink", "to_json", "to_text", "write_atomic"]


def to_text(scenes: SceneOrScenes) -> str:
    """The beat sheet; several scenes one after another."""
    return render_beat_sheet(scenes) if isinstance(scenes, Scene) else render_beat_sheets(as_list(scenes))


FORMATS: dict[str, Callable[[SceneOrScenes], str]] = {
    "text": to_text, "json": to_json, "emotionml": to_emotionml, "fountain": to_fountain, "ink": to_ink,
}


def export(scenes: SceneOrScenes, fmt: str) -> str:
    """Render in one of `FORMATS` (the CLI's `--format` values)."""
    try:
        render = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}") from None
    return render(scenes)
