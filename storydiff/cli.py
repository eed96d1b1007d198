"""The `storydiff` command (DESIGN §8).

Each subcommand is one `cmd_…(args) -> int` function and one row of COMMANDS
(its help and arguments). Exit codes: 0 success, 1 invalid input, 2 usage
error; errors a user can act on are printed as lines, never as tracebacks.
Heavy modules are imported inside the commands, so `storydiff --version` and
`storydiff validate` start fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from . import __version__
from .errors import StorydiffError, ValidationError


class UsageError(StorydiffError):
    """The command line itself is wrong."""

    exit_code = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, through main()."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def cmd_validate(args: argparse.Namespace) -> int:
    """Print every problem in the given files and folders; 1 if there is any."""
    from .validate import validate_paths

    problems = validate_paths(args.paths, args.characters)
    if args.format == "json":
        print(json.dumps([p.as_dict() for p in problems], indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            print(problem)
    return 1 if problems else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Summarise the bundled example situation (placeholder until sampling lands)."""
    from .loader import bundled_library, load_characters, load_situation

    library = bundled_library()
    cast = load_characters(library)
    situation = load_situation(library / "situations" / "storm.situation.xml", cast)
    members = ", ".join(f"{c} ({cast[c].name}{', ' + cast[c].culture if cast[c].culture else ''})"
                        for c in situation.cast)
    print(f"{situation.id}: {situation.title} — {situation.beats} beats, publicness {situation.publicness:g}")
    print(f"cast: {members}")
    for e in situation.events:
        print(f"  beat {e.beat}: {e.id} ({e.status}) {e.text}")
    for pin in situation.pins:
        print(f"  pin {pin.var} in [{pin.bounds[0]:g}, {pin.bounds[1]:g}]")
    return 0


def _arg(*flags: str, **options) -> tuple[tuple[str, ...], dict]:
    return flags, options


@dataclass(frozen=True)
class Command:
    run: Callable[[argparse.Namespace], int]
    help: str
    arguments: tuple[tuple[tuple[str, ...], dict], ...] = ()


_CHARACTERS = _arg("--characters", metavar="DIR",
                   help="where characters and cultures live (default: nearest folder above with "
                        "*.character.xml files, else the bundled library)")

COMMANDS: dict[str, Command] = {
    "demo": Command(cmd_demo, "summarise the bundled example situation"),
    "validate": Command(cmd_validate, "check character, culture, situation and story files", (
        _arg("paths", nargs="+", metavar="PATH", help="files or folders (searched recursively)"),
        _CHARACTERS,
        _arg("--format", choices=("text", "json"), default="text", help="how to print problems"),
    )),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="storydiff", description="Sample the affect beats of a scene, within what "
                                                   "its characters allow.")
    parser.add_argument("--version", action="version", version=f"storydiff {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.help, description=command.help)
        for flags, options in command.arguments:
            sub.add_argument(*flags, **options)
    return parser


def _run(argv: Optional[Sequence[str]]) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        raise UsageError(f"choose a command: {', '.join(COMMANDS)} (storydiff -h for help)")
    return COMMANDS[args.command].run(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (an error's `exit_code`, else 1)."""
    try:
        return _run(argv)
    except SystemExit as e:  # --help and --version
        return int(e.code or 0)
    except ValidationError as e:
        print(e, file=sys.stderr)
        return 1
    except (StorydiffError, OSError) as e:
        print(f"storydiff: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2 if isinstance(e, OSError) else 1)


if __name__ == "__main__":
    sys.exit(main())
