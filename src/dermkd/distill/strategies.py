"""KD strategies: who teaches whom, chosen by name.

A strategy says which architecture is trained (`trains`: the student's or the
teacher's), where its teacher comes from (`source`: a finished teacher run, a finished
student run, or nothing), and turns that source into a `Teacher`: a frozen callable
`(images, labels) -> logits (B, C)`. The training loop does not know which strategy it
serves. The paper's five strategies plus the teacher-free one:

- baseline: no teacher; the model learns from hard labels only.
- standard: a trained teacher (e.g. partly fine-tuned ResNet-50) teaches the student.
- reversed: the trained (baseline) student teaches the teacher architecture.
- defective: the teacher's checkpoint from an early epoch (`kd.teacher_epoch`; the
  paper's 50) teaches the student.
- self: a trained model teaches a fresh copy of its own architecture.
- teacher-free: a virtual teacher, label smoothing with probability `kd.virtual_p` on the
  true class (Yuan et al. 2020, Tf-KD_reg), under the same eq. 1 loss.

Standard KD takes several teachers too (`--teacher A --teacher B`, optionally weighted by
`kd.teacher_weights`): an `EnsembleTeacher` whose soft target is the weighted mean of the
members' softened probabilities.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dermkd.distill.losses import virtual_teacher_logits
from dermkd.errors import DermkdError
from dermkd.io import read_json
from dermkd.registry import Registry, declared_kwargs
from dermkd.rundir import RunDir
from dermkd.train.checkpoints import file_sha256, load_model, resolve_checkpoint


class Teacher(nn.Module):
    """A frozen model used only for its logits; never trained, never in train mode."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> Teacher:
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(images)


class EnsembleTeacher(Teacher):
    """Several frozen teachers as one: the soft target is sum_i w_i softmax(z_i / T).

    It returns T * log(sum_i w_i softmax(z_i / T)), (B, C), so that the KD loss's own
    softmax(. / T) gives exactly that mixture: averaging softened probabilities, not
    logits, as in multi-teacher KD (e.g. You et al. 2017). Weights are normalised to sum 1.
    """

    def __init__(self, members: list[nn.Module], weights: list[float], temperature: float) -> None:
        super().__init__(nn.ModuleList(members))
        w = torch.tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", w / w.sum(), persistent=False)
        self.temperature = temperature

    @torch.no_grad()
    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        log_p = torch.stack([F.log_softmax(m(images).float() / t, dim=1) for m in self.model])  # (M, B, C)
        return t * torch.logsumexp(log_p + self.weights.log().view(-1, 1, 1), dim=0)


class VirtualTeacher(Teacher):
    """Tf-KD's virtual teacher: logits from the labels alone, no network."""

    def __init__(self, num_classes: int, p_correct: float) -> None:
        super().__init__(nn.Identity())
        self.num_classes, self.p_correct = num_classes, p_correct

    @torch.no_grad()
    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return virtual_teacher_logits(labels, self.num_classes, self.p_correct).to(images.dtype)


Sources = Path | list[Path] | None  # one finished run or checkpoint, several (an ensemble), or none
# (source, num_classes, *, the kd settings it declares) -> (teacher, record for env.json)
MakeTeacher = Callable[..., tuple[Teacher | None, dict | None]]


@dataclass(frozen=True)
class Strategy:
    description: str
    trains: Literal["student", "teacher"]  # which architecture this strategy trains
    source: Literal["teacher", "student"] | None  # which finished run teaches (None: no run)
    make_teacher: MakeTeacher

    def teacher(self, source: Sources, num_classes: int, kd: Mapping[str, Any]) -> tuple[Teacher | None, dict | None]:
        """The teacher for `source`, from the `kd` settings (a config section as a dict)
        that this strategy's factory declares."""
        return self.make_teacher(source, num_classes, **declared_kwargs(self.make_teacher, kd))


STRATEGIES: Registry[Strategy] = Registry("strategy")


def checkpoint_teacher(source: Sources, num_classes: int, *, teacher_weights: list[float] | None,
                       temperature: float) -> tuple[Teacher, dict]:
    """A trained model from a run (its best checkpoint) or a checkpoint file; several
    of them make an `EnsembleTeacher`."""
    sources = _as_list(source)
    if not sources:
        raise DermkdError("this strategy needs a teacher: pass --teacher RUN_DIR_OR_CHECKPOINT")
    if len(sources) == 1 and teacher_weights is None:
        return _load_teacher(resolve_checkpoint(sources[0]))
    weights = teacher_weights or [1.0] * len(sources)
    if len(weights) != len(sources):
        raise DermkdError(f"{len(sources)} teachers but {len(weights)} teacher weights")
    members = [_load_teacher(resolve_checkpoint(s)) for s in sources]
    record = {"model": "ensemble", "members": [r for _, r in members], "weights": list(weights),
              "classes": members[0][1]["classes"], "temperature": temperature}
    if any(r["classes"] != record["classes"] for _, r in members):
        raise DermkdError("the ensemble's teachers were trained on different classes")
    # the store key: the members, their weights and T decide the ensemble's outputs
    record["sha256"] = hashlib.sha256(json.dumps([[r["sha256"] for _, r in members], list(weights),
                                                  temperature]).encode()).hexdigest()
    return EnsembleTeacher([t.model for t, _ in members], weights, temperature), record


def _as_list(source: Sources) -> list[Path]:
    if source is None:
        return []
    return [Path(s) for s in source] if isinstance(source, (list, tuple)) else [Path(source)]


def early_checkpoint_teacher(source: Sources, num_classes: int, *, teacher_epoch: int) -> tuple[Teacher, dict]:
    """The teacher run's checkpoint saved after epoch `teacher_epoch` (a poorly trained teacher)."""
    source = _single(source, "defective KD")
    if source is None or not Path(source).is_dir():
        raise DermkdError("defective KD needs a teacher run directory: pass --teacher RUN_DIR")
    path = RunDir(source).epoch_checkpoint(teacher_epoch)
    if not path.is_file():
        raise DermkdError(f"teacher run {source} has no checkpoint after epoch {teacher_epoch} ({path.name}); "
                          f"train the teacher with at least {teacher_epoch} epochs")
    return _load_teacher(path, with_metrics=False)


def _single(source: Sources, what: str) -> Path | None:
    sources = _as_list(source)
    if len(sources) > 1:
        raise DermkdError(f"{what} takes one teacher, not {len(sources)}")
    return sources[0] if sources else None


def virtual_teacher(source: Sources, num_classes: int, *, virtual_p: float) -> tuple[Teacher, dict]:
    return VirtualTeacher(num_classes, virtual_p), {"model": "virtual", "p_correct": virtual_p}


def _load_teacher(path: Path, with_metrics: bool = True) -> tuple[Teacher, dict]:
    model, spec = load_model(path)
    record = {"checkpoint": str(Path(path).resolve()), "sha256": file_sha256(path), "model": spec["name"], "classes": spec["classes"]}
    metrics = RunDir.of_checkpoint(path).metrics
    if with_metrics and metrics.is_file():
        m = read_json(metrics)
        record["test_metrics"] = {k: m.get(k) for k in ("top1_accuracy", "balanced_accuracy", "mcc_multiclass")}
    return Teacher(model), record


def _no_teacher(source: Sources, num_classes: int) -> tuple[None, None]:
    return None, None


for _name, _strategy in {
    "baseline": Strategy("hard labels only", "student", None, _no_teacher),
    "standard": Strategy("trained teacher -> student", "student", "teacher", checkpoint_teacher),
    "reversed": Strategy("trained student -> teacher architecture", "teacher", "student", checkpoint_teacher),
    "defective": Strategy("early-epoch teacher -> student", "student", "teacher", early_checkpoint_teacher),
    "self": Strategy("trained student -> fresh copy of itself", "student", "student", checkpoint_teacher),
    "teacher-free": Strategy("virtual teacher (label smoothing) -> student", "student", None, virtual_teacher),
}.items():
    STRATEGIES.register(_name)(_strategy)
