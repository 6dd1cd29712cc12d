"""The paper's KD loss (eq. 1) against a hand computation in plain Python."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dermkd.distill.losses import OBJECTIVES, KDLoss, cross_entropy, soft_kl
from dermkd.errors import DermkdError

STUDENT = [[1.0, 2.0, 0.5], [0.2, -1.0, 3.0]]
TEACHER = [[2.0, 1.0, 0.0], [0.0, 0.5, 4.0]]
LABELS = [1, 2]


def _softmax(z, t=1.0):
    e = [math.exp(v / t) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _hand_ce(student, labels):
    return sum(-math.log(_softmax(z)[y]) for z, y in zip(student, labels)) / len(labels)


def _hand_kl(student, teacher, t):
    """KL(p_t || p_s) at temperature t, summed over classes, mean over samples (batchmean)."""
    total = 0.0
    for zs, zt in zip(student, teacher):
        ps, pt = _softmax(zs, t), _softmax(zt, t)
        total += sum(q * math.log(q / p) for p, q in zip(ps, pt))
    return total / len(student)


def _hand_total(alpha, t, m):
    return (1 - alpha) * _hand_ce(STUDENT, LABELS) + m * alpha * t * t * _hand_kl(STUDENT, TEACHER, t)


def _tensors(dtype=torch.float64):
    return (torch.tensor(STUDENT, dtype=dtype), torch.tensor(LABELS), torch.tensor(TEACHER, dtype=dtype))


def test_kd_loss_matches_hand_computation():
    s, y, t = _tensors()
    out = KDLoss(cross_entropy(), alpha=0.9, temperature=4.0, kd_multiplier=2.0)(s, y, t)
    ce, kl = _hand_ce(STUDENT, LABELS), _hand_kl(STUDENT, TEACHER, 4.0)
    # sanity of the hand numbers themselves (fixed values, so a wrong formula anywhere shows)
    assert ce == pytest.approx(0.2702600, abs=1e-6)  # (0.464372 + 0.076148) / 2
    assert kl == pytest.approx(0.0178770, abs=1e-6)
    assert out["hard_loss"].item() == pytest.approx(ce, abs=1e-6)
    assert out["kd_loss"].item() == pytest.approx(kl, abs=1e-6)
    expected = 0.1 * ce + 2 * 0.9 * 16 * kl
    assert expected == pytest.approx(_hand_total(0.9, 4.0, 2.0), abs=1e-12)
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)


def test_kd_loss_float32_agrees():
    s, y, t = _tensors(torch.float32)
    out = KDLoss(cross_entropy(), alpha=0.9, temperature=4.0, kd_multiplier=2.0)(s, y, t)
    assert out["loss"].dtype == torch.float32
    assert out["loss"].item() == pytest.approx(_hand_total(0.9, 4.0, 2.0), abs=1e-5)


@pytest.mark.parametrize("alpha, temp", [(0.5, 1.0), (0.3, 2.5), (1.0, 8.0)])
def test_kd_loss_other_settings(alpha, temp):
    s, y, t = _tensors()
    out = KDLoss(cross_entropy(), alpha=alpha, temperature=temp, kd_multiplier=1.0)(s, y, t)
    assert out["loss"].item() == pytest.approx(_hand_total(alpha, temp, 1.0), abs=1e-6)


def test_multiplier_one_halves_the_soft_term():
    s, y, t = _tensors()
    two = KDLoss(cross_entropy(), alpha=0.9, temperature=4.0, kd_multiplier=2.0)(s, y, t)["loss"].item()
    one = KDLoss(cross_entropy(), alpha=0.9, temperature=4.0, kd_multiplier=1.0)(s, y, t)["loss"].item()
    hard = 0.1 * _hand_ce(STUDENT, LABELS)
    assert two - hard == pytest.approx(2 * (one - hard), abs=1e-9)
    assert one == pytest.approx(_hand_total(0.9, 4.0, 1.0), abs=1e-6)


def test_alpha_zero_is_plain_cross_entropy():
    s, y, t = _tensors(torch.float32)
    out = KDLoss(cross_entropy(), alpha=0.0, temperature=4.0, kd_multiplier=2.0)(s, y, t)
    assert torch.equal(out["loss"], F.cross_entropy(s, y))


def test_no_teacher_returns_hard_loss_only():
    s, y, _ = _tensors(torch.float32)
    out = KDLoss(cross_entropy(), alpha=0.9, temperature=4.0, kd_multiplier=2.0)(s, y, None)
    assert set(out) == {"loss", "hard_loss"}
    assert torch.equal(out["loss"], F.cross_entropy(s, y))
    assert out["loss"].item() == pytest.approx(_hand_ce(STUDENT, LABELS), abs=1e-6)


@pytest.mark.parametrize("m, alpha, temp", [(2.0, 0.9, 4.0), (1.0, 0.5, 2.0)])
def test_soft_term_gradient_is_analytic(m, alpha, temp):
    s, y, t = _tensors()
    s.requires_grad_(True)
    kd = KDLoss(cross_entropy(), alpha=alpha, temperature=temp, kd_multiplier=m)
    out = kd(s, y, t)
    soft = m * alpha * temp**2 * out["kd_loss"]
    (grad,) = torch.autograd.grad(soft, s)
    p_s = torch.softmax(s.detach() / temp, dim=1)
    p_t = torch.softmax(t / temp, dim=1)
    expected = m * alpha * temp * (p_s - p_t) / s.shape[0]
    assert torch.allclose(grad, expected, atol=1e-12)
    # and the total is exactly hard + soft: its gradient adds the CE gradient (1-alpha)(p_s - onehot)/B
    s2 = s.detach().clone().requires_grad_(True)
    (g_total,) = torch.autograd.grad(kd(s2, y, t)["loss"], s2)
    onehot = F.one_hot(y, 3).to(s.dtype)
    ce_grad = (1 - alpha) * (torch.softmax(s.detach(), 1) - onehot) / s.shape[0]
    assert torch.allclose(g_total, expected + ce_grad, atol=1e-12)
    # the teacher receives no gradient
    assert not t.requires_grad


def test_soft_kl_zero_for_identical_logits_positive_otherwise():
    z = torch.tensor(STUDENT)
    assert soft_kl(z, z.clone(), 4.0).abs().item() < 1e-7
    assert soft_kl(z, z + 5.0, 2.0).abs().item() < 1e-6  # softmax is shift-invariant
    for temp in (1.0, 4.0, 20.0):
        v = soft_kl(z, torch.tensor(TEACHER), temp).item()
        assert v > 0
    assert soft_kl(z, torch.tensor(TEACHER), 4.0).item() == pytest.approx(_hand_kl(STUDENT, TEACHER, 4.0), abs=1e-6)


def test_objectives_registry():
    assert OBJECTIVES.names() == ["ce", "svm"]
    assert OBJECTIVES.get("ce")(None) is F.cross_entropy
    with pytest.raises(DermkdError, match="unknown objective 'hinge'; known: ce, svm"):
        OBJECTIVES.get("hinge")
