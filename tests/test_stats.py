"""dermkd.evaluate.stats against scikit-learn, scipy and hand counts."""

import warnings

import numpy as np
import pytest
from scipy import stats as sps
from sklearn import metrics as skm

from dermkd.errors import DermkdError
from dermkd.evaluate.metrics import MEASURES, compute_metrics
from dermkd.evaluate.stats import (
    BOOT_STATS,
    _boot_confusions,
    _boot_indices,
    _boot_statistics,
    bootstrap_ci,
    describe_difference,
    friedman,
    mcnemar,
    paired_accuracy_difference,
    paired_metric_difference,
    paired_wilcoxon,
)

C = 9
NAMES = [f"c{k}" for k in range(C)]


@pytest.fixture(scope="module")
def nine():
    """300 samples, 9 classes, a ~70%-accurate classifier."""
    rng = np.random.default_rng(7)
    y = rng.integers(0, C, size=300)
    pred = np.where(rng.random(300) < 0.7, y, rng.integers(0, C, size=300))
    return y, pred


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_keys_and_ci_contains_point_estimate(nine):
    y, pred = nine
    ci = bootstrap_ci(y, pred, C, n_boot=2000)
    assert set(ci) == set(BOOT_STATS) == (
        {"top1_accuracy", "balanced_accuracy", "mcc_multiclass"} | {f"macro_{m}" for m in MEASURES})
    m = compute_metrics(y, pred, NAMES)
    point = {k: m[k] for k in ("top1_accuracy", "balanced_accuracy", "mcc_multiclass")}
    point.update({f"macro_{k}": v for k, v in m["macro"].items()})
    for k, (lo, hi) in ci.items():
        assert lo < point[k] < hi, (k, lo, point[k], hi)
        assert hi - lo < 0.2, k


def test_bootstrap_narrower_with_four_times_the_samples(nine):
    y, pred = nine
    small = bootstrap_ci(y, pred, C, n_boot=2000)
    big = bootstrap_ci(np.tile(y, 4), np.tile(pred, 4), C, n_boot=2000)
    for k in ("top1_accuracy", "balanced_accuracy", "mcc_multiclass", "macro_f1"):
        w_small, w_big = small[k][1] - small[k][0], big[k][1] - big[k][0]
        assert w_big < 0.7 * w_small, (k, w_small, w_big)  # ~ 1/2 expected


def test_bootstrap_perfect_classifier():
    y = np.arange(90) % C
    ci = bootstrap_ci(y, y, C, n_boot=200)
    for k in ("top1_accuracy", "balanced_accuracy", "mcc_multiclass", "macro_f1"):
        assert ci[k] == (1.0, 1.0), k
    assert ci["macro_fpr"] == (0.0, 0.0)


def test_bootstrap_seeded(nine):
    y, pred = nine
    a = bootstrap_ci(y, pred, C, n_boot=300, seed=3)
    assert a == bootstrap_ci(y, pred, C, n_boot=300, seed=3)
    assert a != bootstrap_ci(y, pred, C, n_boot=300, seed=4)


def test_bootstrap_confidence_widens(nine):
    y, pred = nine
    lo90, hi90 = bootstrap_ci(y, pred, C, n_boot=500, confidence=0.90)["top1_accuracy"]
    lo99, hi99 = bootstrap_ci(y, pred, C, n_boot=500, confidence=0.99)["top1_accuracy"]
    assert lo99 < lo90 < hi90 < hi99


@pytest.mark.parametrize("n", [300, 25])  # at n=25 many resamples miss classes entirely
def test_vectorised_resamples_match_sklearn(nine, n):
    y, pred = nine[0][:n], nine[1][:n]
    idx = _boot_indices(n, 20, seed=11)
    np.testing.assert_array_equal(idx, np.random.default_rng(11).integers(0, n, size=(20, n)))
    vals = _boot_statistics(_boot_confusions(y * C + pred, idx, C))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes absent from a resample
        for b in range(20):
            t, p = y[idx[b]], pred[idx[b]]
            labels = sorted(set(t.tolist()))  # macro runs over the classes present in y_true
            ref = {
                "top1_accuracy": skm.accuracy_score(t, p),
                "balanced_accuracy": skm.balanced_accuracy_score(t, p),
                "mcc_multiclass": skm.matthews_corrcoef(t, p),
                "macro_f1": skm.f1_score(t, p, average="macro", zero_division=0, labels=labels),
                "macro_precision": skm.precision_score(
                    t, p, average="macro", zero_division=0, labels=labels),
                "macro_sensitivity": skm.recall_score(
                    t, p, average="macro", zero_division=0, labels=labels),
            }
            for k, v in ref.items():
                assert abs(vals[k][b] - v) < 1e-12, (n, b, k, vals[k][b], v)
            m = compute_metrics(t, p, NAMES)  # the remaining macro measures, per resample
            for meas in MEASURES:
                assert abs(vals[f"macro_{meas}"][b] - m["macro"][meas]) < 1e-12, (b, meas)


def test_bootstrap_chunking_does_not_change_results(nine, monkeypatch):
    from dermkd.evaluate import stats

    y, pred = nine
    ref = bootstrap_ci(y, pred, C, n_boot=100, seed=5)
    monkeypatch.setattr(stats, "_CHUNK", 1000)  # 3 resamples per bincount
    assert bootstrap_ci(y, pred, C, n_boot=100, seed=5) == ref


@pytest.mark.parametrize("kwargs, msg", [
    ({"y_true": [0, 1], "y_pred": [0]}, "labels"),
    ({"y_true": [], "y_pred": []}, "zero samples"),
    ({"y_true": [0, 9], "y_pred": [0, 1]}, "outside"),
    ({"n_boot": 0}, "n_boot"),
    ({"confidence": 1.0}, "confidence"),
])
def test_bootstrap_rejects_bad_input(kwargs, msg):
    args = {"y_true": [0, 1, 2], "y_pred": [0, 1, 1], "num_classes": C, **kwargs}
    with pytest.raises(DermkdError, match=msg):
        bootstrap_ci(**args)


# ---------------------------------------------------------------- McNemar

# y    = 0 1 2 0 1 2 0 1 2 0
# a    = 0 1 2 0 0 0 0 1 1 0   right at 0,1,2,3,6,7,9   wrong at 4,5,8
# b    = 0 0 2 1 1 2 0 1 2 1   right at 0,2,4,5,6,7,8   wrong at 1,3,9
# b01 (a wrong, b right) = {4,5,8} = 3 ; b10 (a right, b wrong) = {1,3,9} = 3
HAND_Y = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
HAND_A = [0, 1, 2, 0, 0, 0, 0, 1, 1, 0]
HAND_B = [0, 0, 2, 1, 1, 2, 0, 1, 2, 1]


def test_mcnemar_hand_counts_and_exact_p():
    r = mcnemar(HAND_Y, HAND_A, HAND_B)
    assert (r["b01"], r["b10"], r["method"]) == (3, 3, "exact")
    assert r["p_value"] == pytest.approx(1.0)
    b_better = [0, 1, 2, 0, 1, 2, 0, 1, 2, 1]  # b wrong only at 9: b01 = 3, b10 = 1
    r = mcnemar(HAND_Y, HAND_A, b_better)
    assert (r["b01"], r["b10"]) == (3, 1)
    assert r["p_value"] == pytest.approx(sps.binomtest(1, 4, 0.5).pvalue, abs=1e-15)
    assert r["p_value"] == pytest.approx(0.625)  # 2 * (1 + 4) / 16


def _paired(b01, b10, both_right=50, both_wrong=10):
    """Labels and two prediction vectors with the given discordant counts."""
    y = np.zeros(b01 + b10 + both_right + both_wrong, dtype=int)
    a = np.concatenate([np.ones(b01), np.zeros(b10), np.zeros(both_right), np.ones(both_wrong)])
    b = np.concatenate([np.zeros(b01), np.ones(b10), np.zeros(both_right), np.ones(both_wrong)])
    return y, a.astype(int), b.astype(int)


def test_mcnemar_exact_matches_binomtest_below_25():
    r = mcnemar(*_paired(15, 5))
    assert (r["b01"], r["b10"], r["method"]) == (15, 5, "exact")
    assert r["p_value"] == pytest.approx(sps.binomtest(5, 20, 0.5).pvalue, abs=1e-15)
    assert r["statistic"] == 5.0


def test_mcnemar_chi2_branch():
    r = mcnemar(*_paired(30, 12))
    stat = (abs(30 - 12) - 1) ** 2 / 42
    assert r["method"] == "chi2"
    assert r["statistic"] == pytest.approx(stat, abs=1e-15)
    assert r["p_value"] == pytest.approx(sps.chi2.sf(stat, 1), abs=1e-15)
    assert 0.005 < r["p_value"] < 0.01  # chi2 = 6.88: between the 6.63 and 7.88 table values
    assert mcnemar(*_paired(13, 12))["method"] == "chi2"  # 25 discordant: chi-square
    assert mcnemar(*_paired(12, 12))["method"] == "exact"


@pytest.mark.parametrize("b01, b10", [(3, 9), (30, 12)])
def test_mcnemar_symmetric(b01, b10):
    y, a, b = _paired(b01, b10)
    ab, ba = mcnemar(y, a, b), mcnemar(y, b, a)
    assert (ab["b01"], ab["b10"]) == (ba["b10"], ba["b01"]) == (b01, b10)
    assert ab["p_value"] == ba["p_value"] and ab["statistic"] == ba["statistic"]


def test_mcnemar_identical_predictions():
    r = mcnemar(HAND_Y, HAND_A, HAND_A)
    assert (r["b01"], r["b10"], r["p_value"]) == (0, 0, 1.0)


@pytest.mark.parametrize("b01, b10", [(15, 5), (30, 12)])
def test_mcnemar_matches_statsmodels(b01, b10):
    sm = pytest.importorskip("statsmodels.stats.contingency_tables")
    r = mcnemar(*_paired(b01, b10))
    ref = sm.mcnemar([[50, b10], [b01, 10]], exact=r["method"] == "exact", correction=True)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-12)


def test_mcnemar_rejects_bad_input():
    with pytest.raises(DermkdError, match="lengths differ"):
        mcnemar([0, 1], [0, 1], [0])
    with pytest.raises(DermkdError, match="empty"):
        mcnemar([], [], [])


# ---------------------------------------------------------------- Wilcoxon / Friedman

A5 = [0.81, 0.79, 0.84, 0.80, 0.83, 0.78, 0.82]
B5 = [0.78, 0.80, 0.79, 0.76, 0.80, 0.75, 0.77]


def test_wilcoxon_matches_scipy():
    r = paired_wilcoxon(A5, B5)
    ref = sps.wilcoxon(A5, B5)
    assert r["statistic"] == ref.statistic and r["p_value"] == pytest.approx(ref.pvalue, abs=1e-15)
    assert r["n"] == 7
    assert r["median_diff"] == pytest.approx(np.median(np.subtract(A5, B5)))
    assert "note" not in r


def test_wilcoxon_degenerate():
    one = paired_wilcoxon([0.8], [0.7])
    assert one["p_value"] == 1.0 and "fewer than 2" in one["note"]
    same = paired_wilcoxon([0.8, 0.7, 0.9], [0.8, 0.7, 0.9])
    assert same["p_value"] == 1.0 and "zero" in same["note"] and same["median_diff"] == 0.0
    with pytest.raises(DermkdError, match="lengths differ"):
        paired_wilcoxon([1.0, 2.0], [1.0])
    with pytest.raises(DermkdError, match="empty"):
        paired_wilcoxon([], [])


def test_friedman_matches_scipy():
    scores = {"base": B5, "kd": A5, "mid": [0.80, 0.78, 0.83, 0.79, 0.81, 0.77, 0.80]}
    r = friedman(scores)
    ref = sps.friedmanchisquare(*scores.values())
    assert r["statistic"] == pytest.approx(ref.statistic, abs=1e-12)
    assert r["p_value"] == pytest.approx(ref.pvalue, abs=1e-15)
    assert (r["k"], r["n"]) == (3, 7)
    assert r["mean_rank"]["kd"] > r["mean_rank"]["mid"] > r["mean_rank"]["base"]


def test_friedman_degenerate():
    two = friedman({"a": A5, "b": B5})
    assert two["p_value"] is None and "at least 3" in two["note"]
    one_block = friedman({"a": [0.1], "b": [0.2], "c": [0.3]})
    assert one_block["p_value"] is None and "2 blocks" in one_block["note"]
    tied = friedman({"a": [0.5, 0.6], "b": [0.5, 0.6], "c": [0.5, 0.6]})
    assert tied["p_value"] == 1.0 and "tie" in tied["note"]
    with pytest.raises(DermkdError, match="lengths differ"):
        friedman({"a": [1.0, 2.0], "b": [1.0], "c": [1.0, 2.0]})


# ---------------------------------------------------------------- describe_difference


def test_describe_mcnemar():
    better = describe_difference("kd-student", "baseline", mcnemar(*_paired(2, 14)))
    assert better.startswith("kd-student better than baseline (McNemar p = 0.00")
    worse = describe_difference("kd-student", "baseline", mcnemar(*_paired(14, 2)))
    assert worse.startswith("kd-student worse than baseline (McNemar p = 0.00")
    none = describe_difference("A", "B", mcnemar(*_paired(6, 4)))
    assert none == ("no significant difference between A and B (McNemar p = 0.754); "
                    "the evidence is too weak to rank them")


def test_describe_wilcoxon_and_alpha():
    r = paired_wilcoxon(A5, B5)
    assert describe_difference("kd", "base", r).startswith("kd better than base (Wilcoxon p = ")
    worse = describe_difference("base", "kd", paired_wilcoxon(B5, A5))
    assert worse.startswith("base worse than kd")
    assert describe_difference("kd", "base", r, alpha=r["p_value"] / 2).startswith(
        "no significant difference")
    tiny = {"b01": 0, "b10": 500, "p_value": 1e-9}
    assert describe_difference("A", "B", tiny) == "A better than B (McNemar p < 0.001)"


def test_describe_rejects_other_results():
    with pytest.raises(DermkdError):
        describe_difference("a", "b", friedman({"a": A5, "b": B5, "c": A5}))
    with pytest.raises(DermkdError, match="alpha"):
        describe_difference("a", "b", mcnemar(HAND_Y, HAND_A, HAND_B), alpha=0)


def test_paired_accuracy_difference_is_b_minus_a_with_a_paired_interval():
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    a = np.array([0, 1, 2, 0, 0, 0, 0, 0, 0, 0])  # 5 right
    b = np.array([0, 1, 2, 0, 1, 2, 0, 0, 0, 0])  # 7 right
    diff, lo, hi = paired_accuracy_difference(y, a, b, n_boot=4000, seed=1)
    assert diff == pytest.approx(0.2)
    # independent re-derivation: resample the per-image differences, same indices
    d = (b == y).astype(float) - (a == y).astype(float)
    idx = np.random.default_rng(1).integers(0, 10, size=(4000, 10))
    assert (lo, hi) == pytest.approx(tuple(np.quantile(d[idx].mean(axis=1), [0.025, 0.975])))
    assert lo >= 0.0  # b is never worse on any image, so no resample favours a
    assert paired_accuracy_difference(y, a, a)[0:3] == (0.0, 0.0, 0.0)


def test_paired_metric_difference_matches_sklearn_and_the_top1_version():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 300)
    a = np.where(rng.random(300) < 0.6, y, rng.integers(0, 4, 300))
    b = np.where(rng.random(300) < 0.7, y, rng.integers(0, 4, 300))
    d, lo, hi = paired_metric_difference(y, a, b, 4)
    assert d == pytest.approx(skm.balanced_accuracy_score(y, b) - skm.balanced_accuracy_score(y, a))
    assert lo < d < hi
    # on top-1 it is the paired accuracy difference, resample for resample
    assert paired_metric_difference(y, a, b, 4, "top1_accuracy") == pytest.approx(
        paired_accuracy_difference(y, a, b))
    assert paired_metric_difference(y, a, a, 4) == (0.0, 0.0, 0.0)
    with pytest.raises(DermkdError, match="unknown metric"):
        paired_metric_difference(y, a, b, 4, "auc")
