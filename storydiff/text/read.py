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
            try:
                return reader(path)
            except UnicodeDecodeError as e:
                line = path.read_bytes()[: e.start].count(b"\n") + 1
                raise StorydiffError(f"{path}:{line}: not UTF-8 text (byte {e.object[e.start:e.start + 1]!r}); "
                                     "save the file as UTF-8") from None
    raise StorydiffError(f"{path}: unknown text format; use .fountain, .txt, .jsonl or .jsonl.gz")
