"""Hard-label objectives (a registry) and the paper's KD loss (eq. 1).

Conventions, since peers differ: here `alpha` weights the SOFT (teacher) term as in the
paper and Hinton et al.; torchdistill's KDLoss weights CE by alpha instead. The soft term
is KL(softmax(z_t/T) || softmax(z_s/T)) with `batchmean` reduction (mean over samples,
summed over classes), not KLDivLoss 'mean' (which Tf-KD uses, adding a factor 1/C).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dermkd.registry import Registry

HardLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (B, C), labels (B,)) -> scalar

OBJECTIVES: Registry[Callable[[], HardLoss]] = Registry("objective")


@OBJECTIVES.register("ce")
def cross_entropy() -> HardLoss:
    """Softmax cross-entropy on hard labels (the paper's L_CE(y, softmax(z_s)))."""
    return F.cross_entropy


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(z_t/T) || softmax(z_s/T)), mean over the batch, summed over classes.

    Equal to CE(softmax(z_t/T), softmax(z_s/T)) minus the teacher's entropy, which is
    constant in the student: same gradients as the paper's cross-entropy form.
    """
    log_p_s = F.log_softmax(student_logits / temperature, dim=1)
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)


class KDLoss(nn.Module):
    """The paper's eq. 1:

        L = (1 - alpha) * hard(z_s, y) + m * alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T))

    with m = `kd_multiplier` (2 in the paper, 1 in Hinton et al.) and `hard` the chosen
    objective (cross-entropy by default). The T^2 factor keeps the soft-term gradients on
    the scale of the hard term as T grows. Returns the total and both parts, so the value
    actually optimised is logged.
    """

    def __init__(self, hard: HardLoss, alpha: float = 0.9, temperature: float = 4.0, kd_multiplier: float = 2.0):
        super().__init__()
        self.hard, self.alpha, self.temperature, self.kd_multiplier = hard, alpha, temperature, kd_multiplier

    def forward(self, student_logits: torch.Tensor, labels: torch.Tensor,
                teacher_logits: torch.Tensor | None) -> dict[str, torch.Tensor]:
        hard = self.hard(student_logits, labels)
        if teacher_logits is None:
            return {"loss": hard, "hard_loss": hard}
        soft = soft_kl(student_logits, teacher_logits, self.temperature)
        t2 = self.temperature**2
        total = (1.0 - self.alpha) * hard + self.kd_multiplier * self.alpha * t2 * soft
        return {"loss": total, "hard_loss": hard, "kd_loss": soft}
