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

from dermkd.config import KDConfig, OptimConfig
from dermkd.distill.losses import OBJECTIVES, KDLoss
from dermkd.distill.strategies import Teacher
from dermkd.models.classifier import Classifier
from dermkd.train.optimizers import build_optimizer


class LitClassifier(L.LightningModule):
    def __init__(self, model: Classifier, model_spec: dict[str, Any], optim: dict[str, Any], kd: dict[str, Any],
                 teacher: Teacher | None = None, channels_last: bool = True,
                 class_weight: list[float] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model", "teacher"])
        self.model = model
        self.optim_cfg = OptimConfig(**optim)
        kd_cfg = KDConfig(**kd)
        weight = torch.tensor(class_weight, dtype=torch.float32) if class_weight is not None else None
        hard = OBJECTIVES.get(kd_cfg.objective)(model.head_weight(), class_weight=weight)
        self.criterion = KDLoss(hard, kd_cfg.alpha, kd_cfg.temperature, kd_cfg.kd_multiplier)
        self.channels_last = channels_last
        object.__setattr__(self, "teacher", teacher)  # not a child module: not trained, not saved
        n = model.num_classes
        self.train_acc = MulticlassAccuracy(n, average="micro")
        self.val_acc = MulticlassAccuracy(n, average="micro")

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def on_fit_start(self) -> None:
        if self.teacher is not None:
            self.teacher.to(self.device)
        for net in (self.model, self.teacher):
            if net is not None and self.channels_last:
                net.to(memory_format=torch.channels_last)

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
        self.log_dict({f"train_{k}": v.detach() for k, v in parts.items()}, on_step=False, on_epoch=True,
                      batch_size=len(y))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return {**parts, "output": logits.detach()}

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x).float()
        # Validation scores the hard-label objective only, so runs of every strategy compare.
        self.log("val_loss", self.criterion.hard(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y))
        self.val_acc(logits, y)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Linear lr warm-up over `optim.warmup_epochs`, per step, from each group's lr.
        A plateau scheduler's cut during the warm-up would be overwritten: keep it short."""
        c = self.optim_cfg
        if not c.warmup_epochs:
            return
        total = max(1, round(c.warmup_epochs * self.trainer.num_training_batches))
        step = self.trainer.global_step
        if step <= total:
            for opt in self.trainer.optimizers:
                for group in opt.param_groups:
                    group.setdefault("warmup_base_lr", group["lr"])
                    group["lr"] = group["warmup_base_lr"] * min(1.0, (step + 1) / total)

    def configure_optimizers(self) -> dict[str, Any]:
        backbone, head = self.model.parameter_groups()
        if self.model.weights["source"] == "random":  # nothing pretrained: one lr for all
            backbone, head = backbone + head, []
        opt = build_optimizer(backbone, self.optim_cfg, head)
        c = self.optim_cfg
        if c.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=c.plateau_factor,
                                                               patience=c.plateau_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        if c.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self.trainer.max_epochs))
            return {"optimizer": opt, "lr_scheduler": sched}
        return {"optimizer": opt}
