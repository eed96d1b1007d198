"""Pick the reader by file extension."""
from __future__ import annotations

from pathlib import Path

from ..errors import StorydiffError
from .fountain import read_fountain
from .jsonl import read_jsonl
from .plain import read_plain
from .scene import TextScene

READERS = {".fountain": read_fountain, ".txt": read_plain, ".jsonl": read_jsonl, ".jsonl.gz": read_jsonl}


def read_text(path: Path | str) -> list[TextScene]:
    """Scenes of a `.fountain`, `.txt` (speaker-labelled) or `.jsonl` / `.jsonl.gz` file."""
    path = Path(path)
    name = path.name.lower()
    for suffix, reader in READERS.items():
        if name.endswith(suffix):
            if not path.is_file():
                raise StorydiffError(f"{path}: no such file")
            return reader(path)
    raise StorydiffError(f"{path}: unknown text format; use .fountain, .txt, .jsonl or .jsonl.gz")
