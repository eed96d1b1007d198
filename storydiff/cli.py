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
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def _load_target(path: str, characters: str | None):
    """A situation or a story file with its cast, found as DESIGN §3 says."""
    from pathlib import Path

    from .loader import find_characters_dir, load_characters, load_situation, load_story
    from .xmlio import parse

    target = Path(path)
    if not target.is_file():
        raise UsageError(f"{path}: no such file; pass a .situation.xml or .story.xml")
    cast = load_characters(find_characters_dir(target, characters))
    if parse(target).kind == "story":
        return load_story(target, cast), cast
    return load_situation(target, cast), cast


def _engine(args: argparse.Namespace):
    from .engine import Engine

    return Engine.load(args.checkpoint, args.device) if args.checkpoint else Engine.default(args.device)


def cmd_sample(args: argparse.Namespace) -> int:
    """Sample scenes of a situation (or a whole story) and print or write them."""
    from .export import export, write_atomic
    from .models import Story
    from .progress import SampleProgress

    if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        raise UsageError(f"{args.output}: no such folder to write in")  # before sampling, not after
    target, cast = _load_target(args.path, args.characters)
    engine = _engine(args)
    story = isinstance(target, Story)
    show = sys.stderr.isatty() if args.progress is None else args.progress
    progress = SampleProgress(sys.stderr, args.n * len(target.scenes) if story else 1, args.steps) if show else None
    options = {"seed": args.seed, "steps": args.steps, "sampler": args.sampler, "guidance": args.guidance,
               "project": not args.no_project, "progress": progress}
    try:
        if story:
            scenes = [s for k in range(args.n) for s in engine.sample_story(target, cast, **{**options, "seed": args.seed + 1000 * k})]
        else:
            scenes = engine.sample(target, n=args.n, cast=cast, **options)
    finally:
        if progress is not None:
            progress.close()
    text = export(scenes if len(scenes) > 1 else scenes[0], args.format)
    if args.output:
        write_atomic(args.output, text)
    else:
        print(text)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Sample the bundled example situation on the bundled checkpoint and print its beat sheet."""
    from .engine import Engine
    from .loader import bundled_library, load_characters, load_situation
    from .render import render_beat_sheet

    library = bundled_library()
    cast = load_characters(library)
    situation = load_situation(library / "situations" / "storm.situation.xml", cast)
    scene = Engine.default(args.device).sample(situation, n=1, seed=args.seed)[0]
    print(render_beat_sheet(scene))
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    """Write a training corpus: simulated scenes (`--n`, deterministic for a seed) or real text (`--text`)."""
    if (args.n is None) == (args.text is None):
        raise UsageError("give either --n N (simulated scenes) or --text FILE… (real dramatic text)")
    if args.text is None:
        if args.hold_out:
            raise UsageError("--hold-out names plays of --text files")
        from .corpus import cmd_corpus as write

        return write(args)
    from .text.store import cmd_text_corpus

    return cmd_text_corpus(args)


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or fine-tune with --from, or continue with --resume) the denoiser on corpus shards."""
    from pathlib import Path

    from .denoiser import DenoiserConfig
    from .engine import pick_device
    from .train import TrainOptions, describe, make_trainer

    opts = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                        log_every=args.log_every, field_dropout=args.field_dropout,
                        read_descriptions=not args.ignore_descriptions, bf16=args.bf16)
    config = DenoiserConfig(width=args.width, depth=args.depth, parameterisation=args.parameterisation)
    trainer = make_trainer(args.data, opts, pick_device(args.device), config=config, init=args.init, resume=args.resume)
    main_process = trainer.place.main  # under torchrun, rank 0 speaks for the run
    if main_process:
        print(describe(trainer), file=sys.stderr)
    trainer.run(Path(args.out), progress=lambda step, loss: _progress(step, opts.steps, loss))
    trainer.place.stop()
    if main_process:
        print(file=sys.stderr)
        print(Path(args.out).with_suffix(".safetensors"))
    return 0


def cmd_learn(args: argparse.Namespace) -> int:
    """Fine-tune a checkpoint on a writer's own manuscripts (shown affect of each speaker, scored with MiniLM)."""
    from pathlib import Path

    from .checkpoint import default_checkpoint
    from .engine import pick_device
    from .shards import Shard
    from .text import read_text, stack_corpus, text_corpus
    from .train import TrainOptions, make_trainer

    scenes = [scene for path in args.files for scene in read_text(path)]
    if not scenes:
        raise UsageError("no scenes with speakers found in the given files")
    print(f"scoring {sum(len(s.speeches) for s in scenes)} speeches in {len(scenes)} scenes…", file=sys.stderr)
    x, mask, cond = stack_corpus(text_corpus(scenes))
    opts = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=min(20, args.steps),
                        seed=args.seed, log_every=max(1, args.steps // 50))
    trainer = make_trainer([], opts, pick_device(args.device), init=Path(args.init or default_checkpoint()),
                           shards=[Shard(x, mask.bool(), cond)])
    trainer.run(Path(args.out), progress=lambda step, loss: _progress(step, opts.steps, loss))
    print(file=sys.stderr)
    print(Path(args.out).with_suffix(".safetensors"))
    return 0


def cmd_tui(args: argparse.Namespace) -> int:
    """Draft in the terminal: watch a scene denoise, pause, inspect, pin, resume, export (DESIGN §9)."""
    from pathlib import Path

    from .tui.app import StorydiffApp

    if args.path and not Path(args.path).is_file():
        raise UsageError(f"{args.path}: no such file; pass a .situation.xml, .story.xml or .draft.json")
    app = StorydiffApp(_engine(args), args.path, characters=args.characters, draft_path=args.draft, seed=args.seed,
                       steps=args.steps, sampler=args.sampler, guidance=args.guidance, paused=args.paused,
                       pace=args.pace)
    app.run()
    return app.return_code or 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve live agents as JSON lines over TCP (README, "Driving game characters")."""
    from .serve import serve

    serve(_engine(args), host=args.host, port=args.port, max_agents=args.max_agents)
    return 0


def _progress(step: int, total: int, loss: float) -> None:
    """A one-line progress bar on stderr."""
    done = int(30 * step / total)
    print(f"\r[{'#' * done}{'.' * (30 - done)}] {step}/{total} loss {loss:.4f}", end="", file=sys.stderr, flush=True)


def _whole(text: str, low: int, high: int | None = None) -> int:
    """A whole number within [low, high], or argparse's one-line usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
    return value


def _probability(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {value}")
    return value


def _seed(text: str) -> int:
    """argparse type: a seed torch's generators take, 0 to 2⁶³ − 1."""
    return _whole(text, 0, 2**63 - 1)


def _finite(text: str) -> float:
    """argparse type: an ordinary number (not nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _above_zero(text: str) -> float:
    """argparse type: a finite number greater than 0 (a learning rate, a pace)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def _width(text: str) -> int:
    """argparse type: a transformer width its attention heads divide (DenoiserConfig's 4)."""
    value = _whole(text, 4)
    if value % 4:
        raise argparse.ArgumentTypeError(f"must be a multiple of 4 (the attention heads), got {value}")
    return value


def _positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    return _whole(text, 1)


def _port(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    return _whole(text, 0, 65535)


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

_DEVICE = _arg("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda when available)")
_SEED = _arg("--seed", type=_seed, default=0, help="random seed; the same seed gives the same scene")

COMMANDS: dict[str, Command] = {
    "demo": Command(cmd_demo, "sample the bundled example situation and print its beat sheet", (_DEVICE, _SEED)),
    "sample": Command(cmd_sample, "sample scenes of a situation or a story", (
        _arg("path", metavar="SITUATION_OR_STORY", help="a .situation.xml or .story.xml file"),
        _CHARACTERS,
        _arg("-n", type=_positive, default=1, help="how many scenes (one batched pass)"),
        _SEED,
        _arg("--steps", type=_positive, default=12, help="sampler steps"),
        _arg("--sampler", choices=("euler", "heun", "ddim", "pyuan"), default="heun"),
        _arg("--guidance", type=_finite, default=1.0, help="classifier-free guidance strength (1 = none)"),
        _arg("--no-project", action="store_true", help="skip projection onto the constraint set (ablation)"),
        _DEVICE,
        _arg("--checkpoint", default=None, help="a .safetensors checkpoint (default: the bundled one)"),
        _arg("--format", choices=("text", "json", "emotionml", "fountain", "ink"), default="text"),
        _arg("-o", "--output", default=None, help="write here (atomically) instead of printing"),
        _arg("--progress", action=argparse.BooleanOptionalAction, default=None,
             help="a progress bar on stderr (default: only when stderr is a terminal)"),
    )),
    "corpus": Command(cmd_corpus, "write a training corpus: simulated scenes, or real dramatic text", (
        _arg("--n", type=_positive, default=None, help="number of simulated scenes"),
        _arg("--text", nargs="+", default=None, metavar="FILE",
             help="instead: score these .fountain, .txt (NAME: line) or .jsonl plays and screenplays (English)"),
        _arg("--out", required=True, metavar="DIR", help="folder for the shards and manifest.json"),
        _SEED,
        _arg("--shard-size", type=_positive, default=4096, metavar="K", help="scenes per shard"),
        _arg("--workers", type=_positive, default=1, help="processes writing shards in parallel"),
        _arg("--hold-out", default=None, metavar="PLAY,…",
             help="with --text: these whole plays go to DIR/held-out/ for evaluation, not training"),
        _arg("--beats", type=_positive, default=64, help="with --text: beats per window (a longer scene is cut)"),
        _arg("--characters", type=_positive, default=16,
             help="with --text: characters per window (those who speak most)"),
    )),
    "learn": Command(cmd_learn, "fine-tune a checkpoint on your own manuscripts (English)", (
        _arg("files", nargs="+", metavar="FILE", help=".fountain, .txt (NAME: line) or .jsonl scenes"),
        _arg("--from", dest="init", default=None, help="checkpoint to start from (default: the bundled one)"),
        _arg("--out", required=True, help="where to write the fine-tuned checkpoint (.safetensors)"),
        _arg("--steps", type=_positive, default=250),
        _arg("--batch-size", type=_positive, default=8),
        _arg("--lr", type=_above_zero, default=1e-4),
        _SEED,
        _DEVICE,
    )),
    "train": Command(cmd_train, "train the denoiser on corpus shards", (
        _arg("data", nargs="+", metavar="DIR_OR_SHARD",
             help="corpus folders or shard files; PATH@N draws from PATH N times as often as its size says"),
        _arg("--out", required=True, help="checkpoint path (.safetensors, with a .json beside it)"),
        _arg("--steps", type=_positive, default=2000),
        _arg("--batch-size", type=_positive, default=64),
        _arg("--lr", type=_above_zero, default=3e-4),
        _arg("--width", type=_width, default=128, help="transformer width, a multiple of 4 (new runs only)"),
        _arg("--depth", type=_positive, default=4, help="transformer blocks (new runs only)"),
        _arg("--parameterisation", choices=("x", "eps", "edm"), default="edm",
             help="what the network predicts (new runs only): EDM's preconditioned mix (default), "
                  "the clean scene, or the noise; the last two are for ablations"),
        _arg("--log-every", type=_positive, default=100),
        _arg("--field-dropout", type=_probability, default=0.0,
             help="per character, drop its traits or its description alone with this probability, so "
                  "the network learns to read either without the other (costs trait fidelity)"),
        _arg("--ignore-descriptions", action="store_true",
             help="train as if no character were described: the network reads traits only, as the "
                  "bundled prior does"),
        _arg("--bf16", action=argparse.BooleanOptionalAction, default=None,
             help="the forward pass in bfloat16 autocast (default: on GPUs that support it)"),
        _arg("--from", dest="init", default=None, help="start from this checkpoint (fine-tune)"),
        _arg("--resume", default=None, help="continue this run exactly (reads its .train.pt)"),
        _SEED,
        _DEVICE,
    )),
    "tui": Command(cmd_tui, "draft a scene in the terminal: watch it denoise, pin values, export", (
        _arg("path", nargs="?", default=None, metavar="SITUATION_OR_STORY_OR_DRAFT",
             help="a .situation.xml, .story.xml or .draft.json (default: the bundled example)"),
        _CHARACTERS,
        _arg("--draft", default=None, metavar="FILE",
             help="where the draft is autosaved (default: NAME.draft.json beside the situation, "
                  "or in this folder for the bundled examples)"),
        _SEED,
        _arg("--steps", type=_positive, default=12, help="sampler steps"),
        _arg("--sampler", choices=("euler", "heun", "ddim", "pyuan"), default="heun"),
        _arg("--guidance", type=_finite, default=1.0, help="classifier-free guidance strength (1 = none)"),
        _arg("--paused", action="store_true", help="open paused (space starts denoising)"),
        _arg("--pace", type=_finite, default=0.2, metavar="SECONDS", help="least time between steps, to watch"),
        _DEVICE,
        _arg("--checkpoint", default=None, help="a .safetensors checkpoint (default: the bundled one)"),
    )),
    "serve": Command(cmd_serve, "serve live game agents as JSON lines over TCP", (
        _arg("--port", type=_port, default=7878, help="TCP port (0 picks a free one)"),
        _arg("--host", default="127.0.0.1", help="address to bind (default: this machine only)"),
        _arg("--max-agents", type=_positive, default=16, help="agents one connection may hold open"),
        _DEVICE,
        _arg("--checkpoint", default=None, help="a .safetensors checkpoint (default: the bundled one)"),
    )),
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


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        raise UsageError(f"choose a command: {', '.join(COMMANDS)} (storydiff -h for help)")
    return COMMANDS[args.command].run(args)


def main(argv: Sequence[str] | None = None) -> int:
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
    except KeyboardInterrupt:  # files are written atomically, so nothing is left half-written
        print("storydiff: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
