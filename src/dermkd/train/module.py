"""The LightningModule: one model, one loss, optionally a frozen teacher.

`training_step` returns the dict of loss parts (as timm's distillation task does) and
logs the value actually optimised. The teacher is held outside the module's registered
children, so it is neither trained nor saved into the student's checkpoints; it is moved
to the student's device at fit start and kept in eval mode.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torchmetrics.classification import MulticlassAccuracy

from dermkd.distill.losses import KDLoss
from dermkd.distill.strategies import Teacher
from dermkd.models.classifier import Classifier
from dermkd.train.optimizers import Optimization


SCHEDULER_KEY = "dermkd_lr_schedule"


class LitClassifier(L.LightningModule):
    """`criterion` and `optimization` come built (`dermkd.build`); the checkpoint's hyper-
    parameters carry `model_spec` only, which is all `load_model` needs."""

    def __init__(self, model: Classifier, model_spec: dict[str, Any], criterion: KDLoss, optimization: Optimization,
                 teacher: Teacher | None = None, channels_last: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters({"model_spec": model_spec})
        self.model = model
        self.criterion = criterion
        self.optimization = optimization
        self.schedule: Any = None  # made with the optimizer
        self._schedule_state: dict[str, Any] | None = None
        self.channels_last = channels_last
        if channels_last:  # before DDP wraps it: its gradient buckets take the layout of the parameters
            model.to(memory_format=torch.channels_last)
        object.__setattr__(self, "teacher", teacher)  # not a child module: not trained, not saved
        n = model.num_classes
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device)
        if self.teacher is not None and self.channels_last:
            self.teacher.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self._layout(x))

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> dict[str, torch.Tensor]:
        """`batch`: (images (B, 3, S, S), labels (B,)) or, from a teacher-logit store, also
        the teacher's logits (B, C) for exactly these views."""
        x, y, *stored = batch
        x = self._layout(x)
        logits = self.model(x).float()  # losses in fp32, also under bf16 autocast
        if stored:
            teacher_logits = stored[0].float()
        else:
            teacher_logits = self.teacher(x, y).float() if self.teacher is not None else None
        parts = self.criterion(logits, y, teacher_logits)
        self.train_acc(logits.detach(), y)
        # sync_dist: under DDP the epoch's loss is the mean over every rank's images
        self.log_dict({f"train_{k}": v.detach() for k, v in parts.items()}, on_step=False, on_epoch=True,
                      batch_size=len(y), sync_dist=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return {**parts, "output": logits.detach()}

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x).float()
        # Validation scores the hard-label objective only, so runs of every strategy compare.
        self.log("val_loss", self.criterion.hard(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y),
                 sync_dist=True)
        self.val_acc(logits, y)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Linear lr warm-up over `optim.warmup_epochs`, per step, from each group's lr.
        A plateau scheduler's cut during the warm-up would be overwritten: keep it short."""
        warmup = self.optimization.warmup_epochs
        if not warmup:
            return
        total = max(1, round(warmup * self.trainer.num_training_batches))
        step = self.trainer.global_step
        if step <= total:
            for opt in self.trainer.optimizers:
                for group in opt.param_groups:
                    group.setdefault("warmup_base_lr", group["lr"])
                    group["lr"] = group["warmup_base_lr"] * min(1.0, (step + 1) / total)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """A model with nothing pretrained learns at one lr; a pretrained backbone at
        lr * backbone_lr_scale. The schedule is stepped here, not by Lightning (see
        `train.schedulers`), and travels in the checkpoint under SCHEDULER_KEY."""
        backbone, head = self.model.parameter_groups()
        if self.model.weights["source"] == "random":  # nothing pretrained: one lr for all
            backbone, head = backbone + head, []
        opt, self.schedule = self.optimization.configure(backbone, head, self.trainer.max_epochs)
        if self.schedule is not None and self._schedule_state is not None:
            self.schedule.load_state_dict(self._schedule_state)
        return opt

    def on_validation_epoch_end(self) -> None:
        if self.schedule is not None and not self.trainer.sanity_checking:
            self.schedule.step(float(self.trainer.callback_metrics["val_loss"]))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.schedule is not None:
            checkpoint[SCHEDULER_KEY] = self.schedule.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._schedule_state = checkpoint.get(SCHEDULER_KEY)  # applied when the optimizer is made, or now
        if self.schedule is not None and self._schedule_state is not None:
            self.schedule.load_state_dict(self._schedule_state)
