"""Training the prior on corpus shards (simulated and real), resumable exactly, CPU or GPU.

A shard is a safetensors file with `x` `[K, C, T, F]`, `mask` (observed variables)
and the SceneCondition fields as `cond.<field>` — what `storydiff corpus` and the
real-text builder both write. Conditions are dropped to the null condition with
probability `cond_dropout`, which is what classifier-free guidance samples with.
Each batch holds scenes of similar size, padded only to the largest of them.
Checkpoints hold an exponential moving average of the weights (Karras et al. 2022 sample
from the EMA too: it smooths the last steps' noise); the raw weights live in `.train.pt`.

Under `torchrun` (RANK / WORLD_SIZE / LOCAL_RANK in the environment) the run is data-parallel:
each process draws its own batches from its own generator, gradients are averaged with one
all-reduce per step (so every process holds the same weights), and only rank 0 writes files;
the batch each step learns from is `batch_size × world size`.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .conditioning import NULL_FIELDS, SceneCondition
from .denoiser import Denoiser, DenoiserConfig, n_parameters
from .errors import StorydiffError
from .shards import Shard, load_shard, shard_files


def drop_conditions(cond: SceneCondition, p: float, generator: torch.Generator,
                    p_field: float = 0.0) -> SceneCondition:
    """Per scene, with probability p, the null condition (classifier-free guidance training:
    `NULL_FIELDS` zeroed, as `SceneCondition.null` samples with); then
    per character, each with probability p_field, its traits or its description alone.

    Writers describe some characters in words and others in numbers; dropping one at a time
    teaches the network to read each without the other.
    """
    b, c = cond.traits.shape[:2]
    device = cond.traits.device
    keep = (torch.rand(b, generator=generator) >= p).float().to(device)
    changes = {name: getattr(cond, name) * keep.reshape(-1, *[1] * (getattr(cond, name).dim() - 1))
               for name in NULL_FIELDS}
    if p_field > 0:  # no draws otherwise: runs without it keep the random stream they always had
        for name in ("trait_mask", "description_mask"):
            changes[name] = changes[name] * (torch.rand(b, c, generator=generator) >= p_field).float().to(device)
    return replace(cond, **changes)


# A batch is drawn from this many batches' worth of scenes adjacent in size (characters, then beats).
# Padding to a random batch's largest scene made a CPU step 2.5x slower (1,082 against 429 ms at
# batch 64 on the bundled prior's corpora; a window of 4 batches: 615 ms).
SIZE_WINDOW = 2


def _by_size(shard: Shard) -> torch.Tensor:
    """The shard's scene indices ordered by the character slots, then the beats, each spans."""
    characters, beats = shard.extents
    return torch.argsort(characters * (beats.max() + 1) + beats, stable=True)


@dataclass
class TrainOptions:
    steps: int = 2000
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 100
    cond_dropout: float = 0.1
    # Per character, traits or description dropped alone, so that either can be read without the
    # other; at 0.25 it cost the traits' conditional fidelity (benchmarks/RESULTS.md, Reading characters).
    field_dropout: float = 0.0
    # False trains as if no character were described, so a network that reads traits only stays so
    # (the bundled prior: Reading characters in benchmarks/RESULTS.md says why).
    read_descriptions: bool = True
    ema: float = 0.999  # decay of the weight average the checkpoint holds; 0 keeps the raw weights
    seed: int = 0
    log_every: int = 100
    save_every: int = 500
    # The network's forward pass in bfloat16 autocast (weights, optimiser, EMA and loss stay float32):
    # None turns it on where it pays, on GPUs that support bf16; True forces it (tests run it on CPU).
    bf16: bool | None = None


def _learning_rate(step: int, opts: TrainOptions) -> float:
    """Linear warm-up, then cosine decay to 10%."""
    if step < opts.warmup:
        return opts.lr * (step + 1) / opts.warmup
    progress = (step - opts.warmup) / max(1, opts.steps - opts.warmup)
    return opts.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@dataclass(frozen=True)
class Distributed:
    """This process's place in a `torchrun` launch: (0, 1) when run alone."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> Distributed:
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """One GPU per process: cuda:LOCAL_RANK when training on CUDA."""
        return torch.device("cuda", self.local_rank) if device.type == "cuda" and self.world > 1 else device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on GPUs, Gloo on CPUs) unless alone or already joined."""
        import torch.distributed as dist

        if self.world > 1 and not dist.is_initialized():
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def stop(self) -> None:
        """Leave the process group at the end of a run, all processes together.

        Without the barrier a process that finishes first (every one but the writer) tears its
        Gloo connections down while the writer still holds them, and Gloo can abort the writer.
        """
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


class Trainer:
    """Owns the model, optimiser and RNG, so a run can stop and resume bit for bit."""

    def __init__(self, model: Denoiser, shards: list[Shard], opts: TrainOptions, device: torch.device,
                 place: Distributed = Distributed()):
        self.model = model.to(device).train()
        self.shards = shards
        self.opts = opts
        self.device = device
        self.place = place
        self.bf16 = opts.bf16 if opts.bf16 is not None else (device.type == "cuda" and torch.cuda.is_bf16_supported())
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
        # Rank 0 draws what a single-process run with this seed draws; the others draw their own batches.
        self.generator = torch.Generator().manual_seed(opts.seed + 1_000_003 * place.rank)
        self.step = 0
        self.ema = [p.detach().clone() for p in self.model.parameters()]
        sizes = torch.tensor([len(s) * s.weight for s in shards], dtype=torch.float64)
        self.shard_weights = sizes / sizes.sum()
        self.by_size = [_by_size(s) for s in shards]
        self.values_per_scene = [float(s.mask.sum()) / len(s) for s in shards]

    def _draw(self, k: int) -> torch.Tensor:
        """A batch of scenes of shard k, of similar sizes: drawn without replacement from a window of
        `SIZE_WINDOW` batches' worth of consecutive scenes in size order, the window placed at random
        (wrapping around), so every scene is equally likely and a batch pads little."""
        n = len(self.shards[k])
        size, window = min(self.opts.batch_size, n), min(n, SIZE_WINDOW * self.opts.batch_size)
        start = int(torch.randint(n, (1,), generator=self.generator))
        offsets = torch.randperm(window, generator=self.generator)[:size]
        return self.by_size[k][(start + offsets) % n]

    def train_step(self) -> float:
        k = int(torch.multinomial(self.shard_weights, 1, generator=self.generator))
        x, mask, cond = self.shards[k].batch(self._draw(k), self.device)
        cond = drop_conditions(cond, self.opts.cond_dropout, self.generator, self.opts.field_dropout)
        for group in self.optimizer.param_groups:
            group["lr"] = _learning_rate(self.step, self.opts)
        noise_gen = torch.Generator(device=self.device).manual_seed(int(torch.randint(2**62, (1,), generator=self.generator)))
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        # The loss is a mean over the batch's observed values; a batch of small scenes has fewer, and
        # weighing it as much as one of large scenes would favour small scenes. Scaled by the batch's
        # share of the shard's mean, each value counts alike, as in a batch drawn without regard to size.
        scale = float(mask.sum()) / (x.shape[0] * self.values_per_scene[k])
        with autocast:
            loss = self.model.loss(x, mask, cond, generator=noise_gen) * scale
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._average_gradients()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self._update_average()
        self.step += 1
        return float(loss.detach())

    def _average_gradients(self) -> None:
        """Data-parallel step: the mean gradient over all processes, in one flat all-reduce."""
        if self.place.world == 1:
            return
        import torch.distributed as dist

        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.place.world
        for g, part in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            g.copy_(part.view_as(g))

    def _update_average(self) -> None:
        """EMA with the usual warm-up, so early weights do not linger in the average."""
        decay = min(self.opts.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for avg, p in zip(self.ema, self.model.parameters(), strict=True):
                avg.lerp_(p, 1.0 - decay)

    def averaged(self) -> Denoiser:
        """A copy of the model holding the averaged weights: what checkpoints store and sampling uses."""
        model = copy.deepcopy(self.model).eval()
        with torch.no_grad():
            for p, avg in zip(model.parameters(), self.ema, strict=True):
                p.copy_(avg)
        return model

    def state(self) -> dict:
        """Everything a resume needs; under torchrun, every process's generator (gathered on all)."""
        rng = [self.generator.get_state()]
        if self.place.world > 1:
            import torch.distributed as dist

            rng = [None] * self.place.world
            dist.all_gather_object(rng, self.generator.get_state())
        return {"step": self.step, "optimizer": self.optimizer.state_dict(), "rng": rng,
                "model": self.model.state_dict(), "ema": self.ema}

    def load_state(self, state: dict) -> None:
        rng = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]
        if len(rng) != self.place.world:
            raise StorydiffError(f"this run was saved by {len(rng)} process(es); resume it with as many "
                                 f"(torchrun --nproc-per-node {len(rng)}), not {self.place.world}")
        self.step = state["step"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(rng[self.place.rank])
        self.model.load_state_dict(state["model"])
        with torch.no_grad():
            for avg, saved in zip(self.ema, state["ema"], strict=True):
                avg.copy_(saved)

    def save(self, out: Path) -> Path:
        """Checkpoint (averaged weights + config) and, beside it, the raw weights, optimiser and RNG.

        Under torchrun every process takes part (the generators are gathered) and rank 0 writes.
        """
        state = self.state()
        path = Path(out).with_suffix(".safetensors")
        if self.place.main:
            trained = {**vars(self.opts), "bf16": self.bf16, "completed_steps": self.step, "processes": self.place.world}
            save_checkpoint(self.averaged(), path, extra={"trained": trained})
            torch.save(state, path.with_suffix(".train.pt"))
        return path

    def run(self, out: Path | None, progress: Callable[[int, float], None] | None = None) -> list[float]:
        losses = []
        while self.step < self.opts.steps:
            losses.append(self.train_step())
            if progress and self.place.main and (self.step % self.opts.log_every == 0
                                                  or self.step == self.opts.steps):
                progress(self.step, sum(losses[-self.opts.log_every:]) / len(losses[-self.opts.log_every:]))
            if out and self.step % self.opts.save_every == 0:
                self.save(out)
        if out:
            self.save(out)
        return losses


def make_trainer(data: list[Path | str], opts: TrainOptions, device: torch.device,
                 config: DenoiserConfig | None = None, init: Path | None = None,
                 resume: Path | None = None, shards: list[Shard] | None = None) -> Trainer:
    """A trainer over corpus shards; `init` fine-tunes a checkpoint, `resume` continues a run exactly.

    Under torchrun it joins the process group first and puts each process on its own GPU.
    """
    place = Distributed.from_environment()
    device = place.device(device)
    place.start(device)
    shards = (shards or []) + [replace(load_shard(p), weight=w) for p, w in shard_files(data)]
    if not shards:
        raise FileNotFoundError("no corpus shards found; run `storydiff corpus --out DIR` first")
    source = resume or init
    if source is not None:
        model, _ = load_checkpoint(source, device)
    else:
        torch.manual_seed(opts.seed)
        model = Denoiser(config or DenoiserConfig())
    if not opts.read_descriptions:
        if model.config.reads_descriptions:
            raise StorydiffError(f"{source}: this network reads descriptions; train it with them, "
                                 "or start a new run to train without")
        shards = [_undescribed(s) for s in shards]
    elif not model.config.reads_descriptions and any(bool(s.cond.description_mask.any()) for s in shards):
        model.start_reading_descriptions()
    # An older network trained again on scenes that carry relations or baseline moods: see Denoiser.
    if not model.config.stance_from_relations and any(bool(s.cond.relations.any()) for s in shards):
        model.start_stance_from_relations()
    if not model.config.mood_from_baseline and any(bool(s.cond.mood.any()) for s in shards):
        model.start_mood_from_baseline()
    if opts.field_dropout > 0:
        model.config = replace(model.config, traits_optional=True)
    longest = max(int(s.extents[1].max()) for s in shards)  # beat positions it learns (DenoiserConfig)
    model.config = replace(model.config, trained_beats=max(model.config.trained_beats or 0, longest))
    trainer = Trainer(model, shards, opts, device, place)
    if resume is not None:
        trainer.load_state(_training_state(Path(resume).with_suffix(".train.pt")))
    return trainer


def _training_state(path: Path) -> dict:
    """What `--resume` continues from (optimiser, step, random state), or one StorydiffError naming the file."""
    if not path.is_file():
        raise StorydiffError(f"{path}: no training state to resume from (it is written beside the checkpoint "
                             "while training); start again with --from instead")
    try:
        return torch.load(path, weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise StorydiffError(f"{path}: damaged training state ({type(e).__name__}); "
                             "continue with --from on its checkpoint instead") from None


def _undescribed(shard: Shard) -> Shard:
    """The shard with every description masked out (the embeddings stay; a zero mask hides them)."""
    mask = shard.cond.description_mask
    return replace(shard, cond=replace(shard.cond, description_mask=torch.zeros_like(mask)))


def describe(trainer: Trainer) -> str:
    n = sum(len(s) for s in trainer.shards)
    return json.dumps({"parameters": n_parameters(trainer.model), "scenes": n, "device": str(trainer.device),
                       "processes": trainer.place.world, "steps": trainer.opts.steps,
                       "bf16": trainer.bf16, "time": time.strftime("%Y-%m-%d %H:%M")})
