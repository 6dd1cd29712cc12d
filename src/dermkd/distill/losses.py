"""Hard-label objectives (a registry), the paper's KD loss (eq. 1) and a virtual teacher.

An objective is registered as a factory `(head_weight) -> HardLoss`, called as
`OBJECTIVES.get(name)(head_weight)`, where `head_weight` is the weight of the classifier's
LAST (classification) layer, shape (C, D), passed as the live parameter so that gradients
reach it. `ce` ignores it; `svm` (Tang 2013) adds an L2 penalty on it.

Conventions, since peers differ: here `alpha` weights the SOFT (teacher) term as in the
paper and Hinton et al.; torchdistill's KDLoss weights CE by alpha instead. The soft term
is KL(softmax(z_t/T) || softmax(z_s/T)) with `batchmean` reduction (mean over samples,
summed over classes), not KLDivLoss 'mean' (which Tf-KD uses, adding a factor 1/C).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dermkd.errors import DermkdError
from dermkd.registry import Registry

HardLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits (B, C), labels (B,)) -> scalar
ObjectiveFactory = Callable[..., HardLoss]  # (head_weight=None, class_weight=None) -> HardLoss

OBJECTIVES: Registry[ObjectiveFactory] = Registry("objective")

# Coefficient lambda of the svm objective's penalty lambda/2 * ||W_last||^2. Tang (2013)
# minimises 1/2 ||w||^2 + C * sum_n hinge_n^2 but does not report C. Dividing his objective
# by C*N (N training samples) gives mean_n hinge_n^2 + 1/(2 C N) ||w||^2, so lambda stands
# for 1/(C N); 1e-3 is our choice (a common weight-decay scale), not a value from the paper.
SVM_L2 = 1e-3


@OBJECTIVES.register("ce")
def cross_entropy(head_weight: torch.Tensor | None = None, class_weight: torch.Tensor | None = None) -> HardLoss:
    """Softmax cross-entropy on hard labels (the paper's L_CE(y, softmax(z_s))).

    `head_weight` is accepted for the common factory signature and ignored.
    `class_weight` (C,), if given, makes it the weighted mean sum_b w_yb l_b / sum_b w_yb.
    """
    if class_weight is None:
        return F.cross_entropy
    return lambda logits, labels: F.cross_entropy(logits, labels, weight=class_weight.to(logits.device))


def squared_hinge(logits: torch.Tensor, labels: torch.Tensor, class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """One-vs-rest squared hinge (L2-SVM data term): mean_b sum_k max(0, 1 - t_bk z_bk)^2.

    t_bk = +1 for the true class of sample b and -1 for every other class. With
    `class_weight` (C,) the mean over b is weighted by w_yb, as in weighted cross-entropy.
    """
    t = 2.0 * F.one_hot(labels, logits.shape[1]).to(logits.dtype) - 1.0
    per_sample = torch.clamp(1.0 - t * logits, min=0.0).pow(2).sum(dim=1)
    if class_weight is None:
        return per_sample.mean()
    w = class_weight.to(logits.device)[labels]
    return (per_sample * w).sum() / w.sum()


@OBJECTIVES.register("svm")
def l2_svm(head_weight: torch.Tensor | None = None, class_weight: torch.Tensor | None = None,
           l2: float = SVM_L2) -> HardLoss:
    """L2-SVM objective of Tang (2013), "Deep Learning using Linear Support Vector Machines".

        loss = mean_b sum_k max(0, 1 - t_bk * z_bk)^2  +  l2 / 2 * ||W||^2

    with z = logits (B, C) read as the one-vs-rest SVM scores, t_bk = +1 for the true class
    and -1 otherwise, and W = `head_weight`, the weight of the last (classification) layer
    (its bias, if any, is not penalised). Tang minimises 1/2 ||w||^2 + C * sum hinge^2;
    here the hinge term is a batch mean, so `l2` plays the role of 1/(C N) (see `SVM_L2`;
    Tang gives no value of C). Predictions are the argmax of the logits (the SVM scores),
    exactly as with cross-entropy, so accuracy metrics need no change.

    `head_weight` must be the live parameter (not a detached copy) so that the penalty's
    gradient l2 * W reaches it; it may be None only when `l2` is 0.
    """
    if l2 < 0:
        raise DermkdError(f"svm objective: l2 must be >= 0, got {l2}")
    if head_weight is None and l2 > 0:
        raise DermkdError("the svm objective needs the classifier's last-layer weight "
                          "(OBJECTIVES.get('svm')(head_weight)) for its L2 penalty")

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hinge = squared_hinge(logits, labels, class_weight)
        if head_weight is None or l2 == 0:
            return hinge
        if head_weight.shape[0] != logits.shape[1]:
            raise DermkdError(f"svm objective: head_weight has {head_weight.shape[0]} rows but the logits have "
                              f"{logits.shape[1]} classes; pass the last (classification) layer's weight")
        return hinge + 0.5 * l2 * head_weight.pow(2).sum()

    return loss


def virtual_teacher_logits(labels: torch.Tensor, num_classes: int, p_correct: float = 0.9, *,
                           dtype: torch.dtype | None = None) -> torch.Tensor:
    """Logits (B, C) of the virtual teacher of Yuan et al. (2020), "Revisiting Knowledge
    Distillation via Label Smoothing Regularization" (Tf-KD_reg).

    The teacher's distribution is p^d(k) = p_correct for the true class and
    (1 - p_correct) / (C - 1) for every other class; the logits returned are log p^d, so
    softmax(logits) == p^d exactly and argmax == label. Used as `teacher_logits` in
    `KDLoss`, the soft term applies the temperature T to them like to any teacher's logits:
    softmax(log p^d / T), i.e. p^d ** (1/T) renormalised (our reading of the paper's softened p^d_tau), with
    the student also at temperature T and the T^2 factor. Note: the authors' released code
    instead applies softmax(p^d / T) to the probabilities themselves and leaves the student
    untempered; at T = 1 ours gives p^d itself.

    p_correct must lie in (1/C, 1): at 1/C the teacher is uniform (no label information),
    below it the true class is not the argmax, and at 1 the other classes get log 0 = -inf,
    which makes the KL term NaN.
    """
    if num_classes < 2:
        raise DermkdError(f"virtual teacher: num_classes must be >= 2, got {num_classes}")
    if not 1.0 / num_classes < p_correct < 1.0:
        raise DermkdError(f"virtual teacher: p_correct must be in (1/C, 1) = ({1.0 / num_classes:.6g}, 1) "
                          f"for C={num_classes}, got {p_correct}")
    dtype = dtype or torch.get_default_dtype()
    log_other = math.log((1.0 - p_correct) / (num_classes - 1))
    logits = torch.full((labels.shape[0], num_classes), log_other, dtype=dtype, device=labels.device)
    return logits.scatter(1, labels.view(-1, 1).long(), math.log(p_correct))


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
    objective (cross-entropy by default; with `svm` the hard term is Tang's L2-SVM loss,
    its weight penalty included and so also scaled by 1 - alpha, while the soft term is
    unchanged). The T^2 factor keeps the soft-term gradients on
    the scale of the hard term as T grows. Returns the total and both parts, so the value
    actually optimised is logged.
    """

    def __init__(self, hard: HardLoss, *, alpha: float, temperature: float, kd_multiplier: float):
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
