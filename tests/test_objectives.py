"""Hard-label objectives (ce, Tang's L2-SVM) and the Tf-KD_reg virtual teacher."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dermkd.distill.losses import (
    OBJECTIVES,
    SVM_L2,
    KDLoss,
    cross_entropy,
    l2_svm,
    soft_kl,
    squared_hinge,
    virtual_teacher_logits,
)
from dermkd.errors import DermkdError

LOGITS = [[2.0, -0.5, 0.3], [0.4, 1.5, -2.0]]
LABELS = [0, 2]
# Hand computation of the squared hinge, t = +1 on the true class, -1 elsewhere:
# row 0 (y=0): t=[+1,-1,-1]: max(0,1-2)^2=0, max(0,1-0.5)^2=0.25, max(0,1+0.3)^2=1.69 -> 1.94
# row 1 (y=2): t=[-1,-1,+1]: max(0,1+0.4)^2=1.96, max(0,1+1.5)^2=6.25, max(0,1+2)^2=9 -> 17.21
# mean over the batch: (1.94 + 17.21) / 2 = 9.575
HAND_HINGE = 9.575
WEIGHT = [[0.5, -1.0], [2.0, 0.0], [-0.25, 1.5]]  # (C=3, D=2); ||W||^2 = 0.25+1+4+0+0.0625+2.25 = 7.5625


def _hand_hinge(logits, labels):
    total = 0.0
    for z, y in zip(logits, labels):
        for k, zk in enumerate(z):
            t = 1.0 if k == y else -1.0
            total += max(0.0, 1.0 - t * zk) ** 2
    return total / len(logits)


def _tensors():
    return torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS), torch.tensor(WEIGHT, dtype=torch.float64)


def test_hinge_matches_hand_computation():
    z, y, _ = _tensors()
    assert _hand_hinge(LOGITS, LABELS) == pytest.approx(HAND_HINGE, abs=1e-12)
    assert squared_hinge(z, y).item() == pytest.approx(HAND_HINGE, abs=1e-12)
    assert l2_svm(None, l2=0.0)(z, y).item() == pytest.approx(HAND_HINGE, abs=1e-12)


def test_penalty_is_half_coef_squared_norm():
    z, y, w = _tensors()
    assert SVM_L2 == 1e-3
    for coef in (SVM_L2, 0.1, 2.0):
        total = l2_svm(w, l2=coef)(z, y)
        assert (total - squared_hinge(z, y)).item() == pytest.approx(0.5 * coef * 7.5625, abs=1e-12)
    # the registry's default uses SVM_L2
    assert OBJECTIVES.get("svm")(w)(z, y).item() == pytest.approx(HAND_HINGE + 0.5 * SVM_L2 * 7.5625, abs=1e-12)


def test_gradient_wrt_logits_is_analytic():
    z, y, w = _tensors()
    z.requires_grad_(True)
    (g,) = torch.autograd.grad(OBJECTIVES.get("svm")(w)(z, y), z)
    b = len(LABELS)
    expected = [[-2.0 * (1.0 if k == lab else -1.0) * max(0.0, 1.0 - (1.0 if k == lab else -1.0) * zk) / b
                 for k, zk in enumerate(row)] for row, lab in zip(LOGITS, LABELS)]
    # by hand: row 0 -> [0, 2*0.5/2, 2*1.3/2] = [0, 0.5, 1.3]; row 1 -> [1.4, 2.5, -3.0]
    assert sum(expected, []) == pytest.approx([0.0, 0.5, 1.3, 1.4, 2.5, -3.0], abs=1e-12)
    assert torch.allclose(g, torch.tensor(expected, dtype=torch.float64), atol=1e-6)


def test_gradient_wrt_weight_includes_coef_w():
    # logits computed from W so that W gets both the hinge gradient and the penalty's coef * W
    x = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    _, y, w = _tensors()
    coef = 0.3
    w1 = w.clone().requires_grad_(True)
    (g_total,) = torch.autograd.grad(l2_svm(w1, l2=coef)(x @ w1.T, y), w1)
    w2 = w.clone().requires_grad_(True)
    (g_hinge,) = torch.autograd.grad(squared_hinge(x @ w2.T, y), w2)
    assert torch.allclose(g_total - g_hinge, coef * w, atol=1e-12)
    # and the penalty alone (logits not depending on W) gives exactly coef * W
    w3 = w.clone().requires_grad_(True)
    z, _, _ = _tensors()
    (g_pen,) = torch.autograd.grad(l2_svm(w3, l2=coef)(z, y), w3)
    assert torch.allclose(g_pen, coef * w, atol=1e-12)


def test_confident_correct_prediction_has_zero_hinge():
    z = torch.tensor([[3.0, -1.5, -2.0], [-1.1, -4.0, 1.01]])
    y = torch.tensor([0, 2])
    assert squared_hinge(z, y).item() == 0.0
    zz = z.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(squared_hinge(zz, y), zz)
    assert torch.equal(g, torch.zeros_like(z))


def test_registry_and_ce_factory():
    names = OBJECTIVES.names()
    assert "ce" in names and "svm" in names
    z, y, w = _tensors()
    assert OBJECTIVES.get("ce")(w) is F.cross_entropy
    assert OBJECTIVES.get("ce")(None) is F.cross_entropy
    assert cross_entropy() is F.cross_entropy
    assert torch.equal(OBJECTIVES.get("ce")(w)(z, y), F.cross_entropy(z, y))


def test_svm_needs_a_weight_of_the_right_shape():
    z, y, w = _tensors()
    with pytest.raises(DermkdError, match="last-layer weight"):
        OBJECTIVES.get("svm")(None)
    with pytest.raises(DermkdError, match="3 classes"):
        OBJECTIVES.get("svm")(w.T)(z, y)  # (2, 3): not the classification layer


def _teacher():
    return torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.5, 4.0]], dtype=torch.float64)


def test_kd_with_svm_alpha_zero_is_the_svm_loss():
    z, y, w = _tensors()
    svm = OBJECTIVES.get("svm")(w)
    out = KDLoss(svm, alpha=0.0, temperature=4.0, kd_multiplier=2.0)(z, y, _teacher())
    assert torch.equal(out["loss"], svm(z, y))
    assert out["hard_loss"].item() == pytest.approx(HAND_HINGE + 0.5 * SVM_L2 * 7.5625, abs=1e-12)


@pytest.mark.parametrize("alpha, temp, m", [(0.9, 4.0, 2.0), (0.5, 2.0, 1.0)])
def test_kd_with_svm_adds_the_same_soft_term_as_ce(alpha, temp, m):
    z, y, w = _tensors()
    t = _teacher()
    svm, ce = OBJECTIVES.get("svm")(w), OBJECTIVES.get("ce")(w)
    out_svm = KDLoss(svm, alpha=alpha, temperature=temp, kd_multiplier=m)(z, y, t)
    out_ce = KDLoss(ce, alpha=alpha, temperature=temp, kd_multiplier=m)(z, y, t)
    soft = m * alpha * temp**2 * soft_kl(z, t, temp)
    assert torch.equal(out_svm["kd_loss"], out_ce["kd_loss"])
    assert out_svm["loss"].item() == pytest.approx(((1 - alpha) * svm(z, y) + soft).item(), abs=1e-12)
    assert (out_svm["loss"] - out_ce["loss"]).item() == pytest.approx(
        (1 - alpha) * (svm(z, y) - F.cross_entropy(z, y)).item(), abs=1e-12)


@pytest.mark.parametrize("c, p", [(3, 0.9), (7, 0.5), (2, 0.51), (9, 0.99)])
def test_virtual_teacher_softmax_is_the_target_distribution(c, p):
    y = torch.tensor([0, c - 1, 1, c // 2])
    logits = virtual_teacher_logits(y, c, p)
    assert logits.shape == (4, c)
    probs = torch.softmax(logits, dim=1)
    target = torch.full((4, c), (1 - p) / (c - 1))
    target[torch.arange(4), y] = p
    assert torch.allclose(probs, target, atol=1e-6, rtol=0)
    assert torch.equal(logits.argmax(dim=1), y)
    # exactly log p on the true class
    assert logits[0, 0].item() == pytest.approx(math.log(p), abs=1e-6)


def test_virtual_teacher_rejects_p_at_or_below_uniform():
    y = torch.tensor([0, 1])
    for c, p in [(3, 1 / 3), (3, 0.2), (2, 0.5), (9, 0.1), (3, 1.0)]:
        with pytest.raises(DermkdError, match="p_correct"):
            virtual_teacher_logits(y, c, p)


def test_virtual_teacher_in_kd_loss_is_finite_and_temperature_applies_to_log_p():
    y = torch.tensor([1, 0])
    t = virtual_teacher_logits(y, 3, 0.9, dtype=torch.float64)
    z, _, _ = _tensors()
    out = KDLoss(cross_entropy(), alpha=0.9, temperature=4.0, kd_multiplier=2.0)(z, y, t)
    assert torch.isfinite(out["loss"])
    # softened teacher = p ** (1/T), renormalised
    p = torch.tensor([0.05, 0.9, 0.05], dtype=torch.float64) ** 0.25
    assert torch.allclose(torch.softmax(t[0] / 4.0, dim=0), p / p.sum(), atol=1e-12)
