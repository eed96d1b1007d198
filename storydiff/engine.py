"""The facade users call: load a checkpoint, then sample or step through scenes (DESIGN §6, §8)."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from . import __version__
from .checkpoint import default_checkpoint, load_checkpoint
from .conditioning import SceneCondition, condition_from
from .denoiser import Denoiser
from .embedding import embed_cached
from .errors import InfeasibleError, StorydiffError
from .layout import StateLayout
from .limits import variable_limits
from .models import Cast, Pin, Situation, Story
from .polytope import Polytope
from .sampling import SAMPLERS, Projected, Step, sigmas_for, tolerance
from .scene import Provenance, Scene

if TYPE_CHECKING:
    from .agent import Agent
    from .pool import Pool

DEFAULT_SAMPLER = "heun"
DEFAULT_STEPS = 12


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """`cuda` when available, else `cpu`, unless the caller names one."""
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            dev = None
        if dev is None or dev.type not in ("cpu", "cuda"):
            raise StorydiffError(f"--device {device!r}: not a device storydiff runs on; use cpu, cuda or cuda:N")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise StorydiffError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def require_seed(seed: object) -> None:
    """A seed torch's generators take, or a StorydiffError (scenes and agents alike)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise StorydiffError(f"seed must be a whole number in [0, 2**63), got {seed!r}")


@dataclass
class Run:
    """Everything fixed for one denoising run: what `denoise` and resume need to agree on."""

    situation: Situation
    cast: Cast
    layout: StateLayout
    polytope: Polytope
    condition: SceneCondition
    sigmas: list[float]
    sampler: str
    steps: int
    seed: int
    guidance: float
    project: bool
    n: int


class Engine:
    """A loaded denoiser on a device; samples scenes for situations."""

    def __init__(self, model: Denoiser, meta: dict, device: torch.device):
        self.model = model.to(device).eval()
        self.meta = meta
        self.device = device

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> Engine:
        dev = pick_device(device)
        model, meta = load_checkpoint(path, dev)
        return cls(model, meta, dev)

    @classmethod
    def default(cls, device: str | torch.device | None = None) -> Engine:
        """The bundled checkpoint, on CUDA when available."""
        return cls.load(default_checkpoint(), device)

    @property
    def checkpoint(self) -> str:
        return self.meta.get("hash", "unknown")

    def condition(self, cast: Cast, situation: Situation, polytope: Polytope | None = None) -> SceneCondition:
        """What the network is told about a scene, as far as it was trained to read it: descriptions
        only if it reads them, unwritten traits as unknown only if it was trained without traits, and
        the limits of the scene's constraint set (`polytope`, compiled here if not given)."""
        from .constraints import compile_constraints

        config = self.model.config
        layout = StateLayout(situation.cast, situation.beats, config.max_characters)
        if polytope is None:
            polytope = compile_constraints(cast, situation, layout=layout)
        return condition_from(cast, situation, embed_cached if config.reads_descriptions else None,
                              unwritten_traits_unknown=config.traits_optional, limits=variable_limits(polytope, layout))

    def prepare(self, situation: Situation, *, cast: Cast | None = None, n: int = 1, seed: int = 0,
                steps: int = DEFAULT_STEPS, sampler: str = DEFAULT_SAMPLER, guidance: float = 1.0,
                project: bool = True, pins: tuple[Pin, ...] | list[Pin] = (),
                previous: dict[str, float] | None = None) -> Run:
        """Compile the constraint set and the conditioning; refuse an infeasible scene before sampling."""
        from .constraints import compile_constraints
        from .feasibility import require_feasible

        if not isinstance(situation, Situation):
            hint = " (a story: use sample_story)" if isinstance(situation, Story) else ""
            raise StorydiffError(f"expected a Situation from storydiff.load_situation, got "
                                 f"{type(situation).__name__}{hint}")
        if sampler not in SAMPLERS:
            raise StorydiffError(f"unknown sampler {sampler!r}; use one of: {', '.join(SAMPLERS)}")
        for name, value in (("steps", steps), ("n", n)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise StorydiffError(f"{name} must be a whole number of at least 1, got {value!r}")
        require_seed(seed)
        if not isinstance(guidance, int | float) or not math.isfinite(guidance):
            raise StorydiffError(f"guidance must be a finite number, got {guidance!r}")
        cast = _cast_of(situation, cast)
        if pins:
            situation = situation.model_copy(update={"pins": [*situation.pins, *pins]})
        layout = StateLayout(situation.cast, situation.beats, self.model.config.max_characters)
        polytope = compile_constraints(cast, situation, previous=previous, layout=layout)
        require_feasible(cast, situation, previous, polytope)
        condition = SceneCondition.stack([self.condition(cast, situation, polytope)] * n, len(situation.cast),
                                         situation.beats).to(self.device)
        cfg = self.model.config
        return Run(situation, cast, layout, polytope, condition, sigmas_for(sampler, steps, cfg.sigma_min, cfg.sigma_max),
                   sampler, steps, seed, guidance, project, n)

    def denoise(self, situation: Situation | Run, *, resume: Step | None = None,
                edits: dict[str, float] | None = None, **options) -> Iterator[Step]:
        """Yield a Step after every sampler update; `resume=step` continues from any step exactly."""
        run = situation if isinstance(situation, Run) else self.prepare(situation, **options)
        generator = torch.Generator().manual_seed(run.seed)
        if resume is None:
            shape = (run.n, *run.layout.shape)
            x = torch.randn(shape, generator=generator, dtype=torch.float32).to(self.device) * run.sigmas[0]
            start, carry = 0, {}
        else:
            _check_resume(run, resume)
            generator.set_state(resume.rng_state)
            x, start, carry = resume.x_t.clone(), resume.index + 1, dict(resume.carry)
        mask = run.layout.mask().to(self.device, x.dtype)
        edits = {name: float(value) for name, value in (edits or {}).items()}
        if resume is not None and edits:
            x = _apply(x, edits, run.layout, shift_from=resume.projected)
        known = self._known(run, edits)
        project = _projector(run, carry.get("projection")) if run.project else None
        denoise = self._denoiser(run, mask, known)
        sampler = SAMPLERS[run.sampler]
        yield from sampler(denoise, x * mask, run.sigmas, project, generator, start=start, carry=carry)

    def _known(self, run: Run, edits: dict[str, float]) -> dict[str, float]:
        """Values held fixed by inpainting: equality pins and the writer's edits (names checked)."""
        for name in edits:
            run.layout.index(name)
        return {**{p.var: p.equal for p in run.situation.pins if p.equal is not None}, **edits}

    def _denoiser(self, run: Run, mask: torch.Tensor, known: dict[str, float]):
        """D(x, σ) with classifier-free guidance and inpainting of known values into x0_hat."""
        cond, null = run.condition, run.condition.null()

        @torch.no_grad()
        def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
            s = torch.full((x.shape[0],), sigma, device=x.device)
            d = self.model(x, s, cond)
            if run.guidance != 1.0:
                u = self.model(x, s, null)
                d = u + run.guidance * (d - u)
            return _apply(d * mask, known, run.layout)

        return denoise

    def sample(self, situation: Situation, n: int = 1, seed: int = 0, steps: int = DEFAULT_STEPS,
               sampler: str = DEFAULT_SAMPLER, project: bool = True,
               progress: Callable[[Step], None] | None = None, **options) -> list[Scene]:
        """n scenes of one situation in one batched pass; `progress` is called after every step."""
        run = self.prepare(situation, n=n, seed=seed, steps=steps, sampler=sampler, project=project, **options)
        last = None
        for last in self.denoise(run):
            if progress is not None:
                progress(last)
        return self.scenes(run, last)

    def scenes(self, run: Run, step: Step) -> list[Scene]:
        """Scenes from a step's projected estimate (the final step gives the sampled scenes)."""
        out = []
        for k in range(run.n):
            prov = Provenance(storydiff=__version__, checkpoint=self.checkpoint, seed=run.seed, sampler=run.sampler,
                              steps=run.steps, guidance=run.guidance, project=run.project,
                              situation=run.situation.id, sample=k)
            out.append(Scene.from_tensor(step.projected[k], run.cast, run.situation, prov, step.binding))
        return out

    def sample_story(self, story: Story, cast: Cast | None = None, seed: int = 0, **options) -> list[Scene]:
        """Scene after scene; each starts where the previous one's mood and stance ended (DESIGN §3).

        Refuses a story whose scenes cannot follow one another before sampling any. A chain
        that holds can still dead-end on an unlucky sample (a scene ends where the next cannot
        start, scenes being sampled one at a time): the error says so, and another seed is the remedy.
        """
        from .feasibility import require_story_feasible

        if story.situations:
            pinned = [s.model_copy(update={"pins": [*s.pins, *options.get("pins", ())]}) for s in story.situations]
            require_story_feasible(_cast_of(story.situations[0], cast), story.model_copy(update={"situations": pinned}))
        scenes: list[Scene] = []
        for k, (part, situation) in enumerate(zip(story.scenes, story.situations)):
            previous = carry_over(scenes[-1], part.carry) if scenes else None
            try:
                (scene,) = self.sample(situation, n=1, seed=seed + k, cast=cast, previous=previous, **options)
            except InfeasibleError as e:
                if previous is None:
                    raise
                raise InfeasibleError(f"story {story.id!r}: scene {k + 1} ({situation.id}) cannot start where "
                                      f"this sample of scene {k} ended (the scenes can follow one another, this "
                                      f"sample cannot): sample again with another seed. {e}") from e
            # the scene depends on the ones before it: only the story regenerates it
            scene.provenance = scene.provenance.model_copy(update={"story": story.id, "part": k, "seed": seed})
            scenes.append(scene)
        return scenes

    def agent(self, situation: Situation, seed: int = 0, **options) -> Agent:
        """A live scene for a game, stepped beat by beat (storydiff.agent.Agent for the options)."""
        from .agent import Agent

        return Agent(self, situation, seed=seed, **options)

    def pool(self, agents: Iterable[Agent]) -> Pool:
        """Agents stepped together: one batched network call and one projection per beat."""
        from .pool import Pool

        return Pool(agents)


def carry_over(scene: Scene, carry: list[str]) -> dict[str, float]:
    """The previous scene's last-beat mood and stance, keyed `mara.mood.pleasure`, `mara.stance.ilan.trust`."""
    out: dict[str, float] = {}
    for cell in scene.cells[-1]:
        if "mood" in carry:
            out.update({f"{cell.character}.mood.{d}": v for d, v in cell.mood.items()})
        if "stance" in carry:
            out.update({f"{cell.character}.stance.{o}.{s}": v for o, st in cell.stance.items() for s, v in st.items()})
    return out


def _cast_of(situation: Situation, cast: Cast | None) -> Cast:
    cast = cast or situation.library
    if cast is None:
        raise StorydiffError(f"situation {situation.id!r} has no cast loaded; load it with storydiff.load_situation(path, cast)")
    return cast


def _check_resume(run: Run, step: Step) -> None:
    """A step continues only the run it came from: same scene shape, batch and noise schedule."""
    shape = (run.n, *run.layout.shape)
    schedule = run.sigmas[step.index: step.index + 2] if step.index + 1 < len(run.sigmas) else None
    if tuple(step.x_t.shape) != shape or schedule != [step.sigma, step.sigma_next]:
        raise StorydiffError(f"this step (index {step.index}, σ {step.sigma:.4g}, batch of {step.x_t.shape[0]}) comes "
                             f"from another run; resume with the situation, n, steps and sampler it was sampled with")


def _apply(x: torch.Tensor, known: dict[str, float], layout: StateLayout,
           shift_from: torch.Tensor | None = None) -> torch.Tensor:
    """Write known values into a state; with `shift_from`, move x by the edit's offset from that estimate."""
    if not known:
        return x
    flat = x.reshape(x.shape[0], -1).clone()
    for name, value in known.items():
        pos = int(layout.positions[layout.index(name)])
        if shift_from is None:
            flat[:, pos] = value
        else:
            flat[:, pos] += value - shift_from.reshape(x.shape[0], -1)[:, pos]
    return flat.reshape(x.shape)


def _projector(run: Run, warm: object):
    """Projection of x0_hat onto the run's polytope, warm-started from the previous call."""
    from .projection import project

    state = {"warm": warm}
    layout, polytope = run.layout, run.polytope

    def apply(x0: torch.Tensor, index: int, last: bool) -> Projected:
        flat = layout.flatten(x0).to(torch.float64)
        y, info = project(flat, polytope, warm_start=state["warm"], tol=tolerance(index, run.steps))
        state["warm"] = info
        return Projected(layout.unflatten(y.to(x0.dtype), like=x0), info.distance, info.binding, info)

    return apply
