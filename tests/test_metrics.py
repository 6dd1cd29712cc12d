"""dermkd.evaluate.metrics against hand counts and scikit-learn."""

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from dermkd.errors import DermkdError
from dermkd.evaluate.metrics import (
    MEASURES,
    compute_metrics,
    confusion_matrix,
    measures_from_counts,
    ovr_counts,
)

TOL = 1e-12
C = 9
NAMES = [f"c{k}" for k in range(C)]
LABELS = list(range(C))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def nine():
    """200 samples, 9 classes, a ~60%-accurate classifier and probabilities that favour y."""
    rng = np.random.default_rng(20240611)
    y = rng.integers(0, C, size=200)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, C, size=200))
    logits = rng.normal(size=(200, C))
    logits[np.arange(200), y] += 1.5
    probs = _softmax(logits)
    assert set(y) == set(pred) == set(LABELS)  # the sklearn comparisons below rely on it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics(y, pred, NAMES, probs=probs)
    return y, pred, probs, m


def _per_class(m, measure):
    return np.array([m["per_class"][name][measure] for name in m["class_names"]])


# Hand example, 3 classes, 8 samples.
#   y_true = 0 0 0 1 1 2 2 2
#   y_pred = 0 0 1 1 2 2 2 0
# confusion (rows true, cols pred): [[2,1,0],[0,1,1],[1,0,2]]
# class 0: TP=2 (0->0 twice), FP=1 (2->0), FN=1 (0->1), TN=8-4=4
# class 1: TP=1 (1->1),       FP=1 (0->1), FN=1 (1->2), TN=8-3=5
# class 2: TP=2 (2->2 twice), FP=1 (1->2), FN=1 (2->0), TN=8-4=4
# summed:  TP=5, FP=3, FN=3, TN=13
HAND_TRUE = [0, 0, 0, 1, 1, 2, 2, 2]
HAND_PRED = [0, 0, 1, 1, 2, 2, 2, 0]


def test_hand_counts_exact():
    cm = confusion_matrix(HAND_TRUE, HAND_PRED, 3)
    assert cm.dtype == np.int64
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    counts = ovr_counts(cm)
    assert counts["tp"].tolist() == [2, 1, 2]
    assert counts["fp"].tolist() == [1, 1, 1]
    assert counts["fn"].tolist() == [1, 1, 1]
    assert counts["tn"].tolist() == [4, 5, 4]


def test_hand_measures_exact():
    m = compute_metrics(HAND_TRUE, HAND_PRED, ["a", "b", "c"])
    a = {  # TP=2 FP=1 FN=1 TN=4
        "sensitivity": 2 / 3, "specificity": 4 / 5, "precision": 2 / 3, "npv": 4 / 5,
        "fpr": 1 / 5, "fdr": 1 / 3, "fnr": 1 / 3, "ovr_accuracy": 6 / 8, "f1": 4 / 6,
        "mcc": (2 * 4 - 1 * 1) / np.sqrt(3 * 3 * 5 * 5),
    }
    b = {  # TP=1 FP=1 FN=1 TN=5
        "sensitivity": 1 / 2, "specificity": 5 / 6, "precision": 1 / 2, "npv": 5 / 6,
        "fpr": 1 / 6, "fdr": 1 / 2, "fnr": 1 / 2, "ovr_accuracy": 6 / 8, "f1": 2 / 4,
        "mcc": (1 * 5 - 1 * 1) / np.sqrt(2 * 2 * 6 * 6),
    }
    for measure in MEASURES:
        assert m["per_class"]["a"][measure] == pytest.approx(a[measure], abs=TOL)
        assert m["per_class"]["c"][measure] == pytest.approx(a[measure], abs=TOL)  # same counts
        assert m["per_class"]["b"][measure] == pytest.approx(b[measure], abs=TOL)
        assert m["macro"][measure] == pytest.approx((2 * a[measure] + b[measure]) / 3, abs=TOL)
    assert [m["per_class"][k]["support"] for k in "abc"] == [3, 2, 3]
    assert m["n"] == 8
    assert m["top1_accuracy"] == pytest.approx(5 / 8, abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3, abs=TOL)
    # micro: TP=5 FP=3 FN=3 TN=13
    assert m["micro"]["sensitivity"] == pytest.approx(5 / 8, abs=TOL)
    assert m["micro"]["specificity"] == pytest.approx(13 / 16, abs=TOL)
    assert m["micro"]["ovr_accuracy"] == pytest.approx(18 / 24, abs=TOL)
    assert m["micro"]["mcc"] == pytest.approx((5 * 13 - 9) / np.sqrt(8 * 8 * 16 * 16), abs=TOL)
    assert "roc_auc_macro_ovr" not in m and "log_loss" not in m


def test_measures_from_counts_scalars_and_zero_denominators():
    m = measures_from_counts(3, 1, 2, 10)
    assert float(m["npv"]) == pytest.approx(10 / 12, abs=TOL)
    assert float(m["mcc"]) == pytest.approx((30 - 2) / np.sqrt(4 * 5 * 11 * 12), abs=TOL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = measures_from_counts(0, 0, 0, 0)
    assert all(float(empty[k]) == 0.0 for k in MEASURES)


def test_mcc_does_not_overflow_on_large_counts():
    m = measures_from_counts(np.int64(400_000), np.int64(100_000), np.int64(100_000), np.int64(400_000))
    assert float(m["mcc"]) == pytest.approx(0.6, abs=TOL)


def test_confusion_matrix_matches_sklearn(nine):
    y, pred, _, m = nine
    expected = skm.confusion_matrix(y, pred, labels=LABELS)
    assert np.array_equal(confusion_matrix(y, pred, C), expected)
    assert m["confusion_matrix"] == expected.tolist()


def test_per_class_and_macro_prf_match_sklearn(nine):
    y, pred, _, m = nine
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=LABELS, average=None, zero_division=0)
    assert _per_class(m, "precision") == pytest.approx(p, abs=TOL)
    assert _per_class(m, "sensitivity") == pytest.approx(r, abs=TOL)
    assert _per_class(m, "f1") == pytest.approx(f, abs=TOL)
    assert _per_class(m, "support").tolist() == s.tolist()
    mp, mr, mf, _ = skm.precision_recall_fscore_support(y, pred, labels=LABELS, average="macro", zero_division=0)
    assert m["macro"]["precision"] == pytest.approx(mp, abs=TOL)
    assert m["macro"]["sensitivity"] == pytest.approx(mr, abs=TOL)
    assert m["macro"]["f1"] == pytest.approx(mf, abs=TOL)


def test_per_class_ovr_measures_match_sklearn_multilabel(nine):
    y, pred, _, m = nine
    mcm = skm.multilabel_confusion_matrix(y, pred, labels=LABELS)  # (C, 2, 2): [[tn, fp], [fn, tp]]
    tn, fp, fn, tp = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0], mcm[:, 1, 1]
    assert _per_class(m, "specificity") == pytest.approx(tn / (tn + fp), abs=TOL)
    assert _per_class(m, "npv") == pytest.approx(tn / (tn + fn), abs=TOL)
    assert _per_class(m, "fpr") == pytest.approx(fp / (fp + tn), abs=TOL)
    assert _per_class(m, "fdr") == pytest.approx(fp / (fp + tp), abs=TOL)
    assert _per_class(m, "fnr") == pytest.approx(fn / (fn + tp), abs=TOL)
    assert _per_class(m, "ovr_accuracy") == pytest.approx((tp + tn) / len(y), abs=TOL)
    binary_acc = [skm.accuracy_score(y == k, pred == k) for k in LABELS]
    assert _per_class(m, "ovr_accuracy") == pytest.approx(binary_acc, abs=TOL)
    binary_mcc = [skm.matthews_corrcoef(y == k, pred == k) for k in LABELS]
    assert _per_class(m, "mcc") == pytest.approx(binary_mcc, abs=TOL)


def test_summary_scores_match_sklearn(nine):
    y, pred, probs, m = nine
    assert m["n"] == 200
    assert m["top1_accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=TOL)
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=TOL)
    assert m["mcc_multiclass"] == pytest.approx(skm.matthews_corrcoef(y, pred), abs=TOL)
    assert m["micro"]["sensitivity"] == pytest.approx(m["top1_accuracy"], abs=TOL)
    assert m["micro"]["precision"] == pytest.approx(m["top1_accuracy"], abs=TOL)
    assert m["micro"]["f1"] == pytest.approx(m["top1_accuracy"], abs=TOL)
    auc = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert m["roc_auc_macro_ovr"] == pytest.approx(auc, abs=TOL)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=LABELS), abs=TOL)


def test_ovr_accuracy_runs_far_above_top1(nine):
    _, _, _, m = nine
    assert m["macro"]["ovr_accuracy"] > m["top1_accuracy"] + 0.2
    # each error is one FP and one FN: macro OvR accuracy = 1 - 2 * error / C
    assert m["macro"]["ovr_accuracy"] == pytest.approx(1 - 2 * (1 - m["top1_accuracy"]) / C, abs=TOL)


def test_roc_auc_with_tied_scores_matches_sklearn():
    rng = np.random.default_rng(7)
    templates = np.array([
        [0.4, 0.3, 0.2, 0.1],
        [0.25, 0.25, 0.25, 0.25],
        [0.1, 0.2, 0.3, 0.4],
        [0.7, 0.1, 0.1, 0.1],
    ])
    y = rng.integers(0, 4, size=120)
    row = np.where(rng.random(120) < 0.5, y, rng.integers(0, 4, size=120))
    probs = templates[row]
    assert set(y) == {0, 1, 2, 3}
    m = compute_metrics(y, y, list("abcd"), probs=probs)
    auc = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro")
    assert m["roc_auc_macro_ovr"] == pytest.approx(auc, abs=TOL)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs), abs=TOL)


def test_roc_auc_skips_class_absent_from_labels():
    rng = np.random.default_rng(3)
    y = rng.choice([0, 1, 3], size=60)  # class 2 never occurs
    probs = _softmax(rng.normal(size=(60, 4)) + 2 * np.eye(4)[y])
    m = compute_metrics(y, y, list("abcd"), probs=probs)
    expected = np.mean([skm.roc_auc_score(y == k, probs[:, k]) for k in (0, 1, 3)])
    assert m["roc_auc_macro_ovr"] == pytest.approx(expected, abs=TOL)
    single = compute_metrics([1, 1], [1, 0], list("ab"), probs=np.array([[0.3, 0.7], [0.6, 0.4]]))
    assert single["roc_auc_macro_ovr"] is None


def test_unpredicted_and_absent_classes_give_zero_without_warnings():
    # class 1 occurs twice but is never predicted; class 3 is never in y_true nor predicted
    y = [0, 0, 1, 1, 2, 2]
    pred = [0, 2, 0, 2, 2, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics(y, pred, list("abcd"))
    never_predicted, absent = m["per_class"]["b"], m["per_class"]["d"]
    for values in (never_predicted, absent):
        assert all(np.isfinite(values[k]) for k in MEASURES)
    assert never_predicted["precision"] == 0.0 and never_predicted["f1"] == 0.0
    assert never_predicted["fdr"] == 0.0 and never_predicted["mcc"] == 0.0
    assert absent["sensitivity"] == 0.0 and absent["fnr"] == 0.0
    assert absent["precision"] == 0.0 and absent["mcc"] == 0.0 and absent["support"] == 0
    assert all(np.isfinite(m["macro"][k]) for k in MEASURES)
    # macro runs over the classes present in y_true (a, b, c), like balanced accuracy
    assert m["absent_classes"] == ["d"]
    sk_p, sk_r, _, _ = skm.precision_recall_fscore_support(y, pred, labels=[0, 1, 2], average="macro",
                                                           zero_division=0)
    assert m["macro"]["precision"] == pytest.approx(sk_p, abs=TOL)
    assert m["macro"]["sensitivity"] == pytest.approx(sk_r, abs=TOL) == m["balanced_accuracy"]
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, labels=[0, 1, 2, 3], average=None, zero_division=0)
    assert _per_class(m, "precision") == pytest.approx(p, abs=TOL)
    assert _per_class(m, "sensitivity") == pytest.approx(r, abs=TOL)
    assert _per_class(m, "f1") == pytest.approx(f, abs=TOL)
    # balanced accuracy averages over classes present in y_true only: (1/2 + 0 + 1) / 3
    assert m["balanced_accuracy"] == pytest.approx(0.5, abs=TOL)


def test_result_is_plain_json(nine):
    y, pred, probs, m = nine
    assert json.loads(json.dumps(m)) == m

    def walk(x):
        if isinstance(x, dict):
            assert all(type(k) is str for k in x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        else:
            assert type(x) in (int, float, str), type(x)

    walk(m)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 9], [0, 1, 2], "outside"),
        ([0, 1, 2], [0, -1, 2], "outside"),
        ([0, 1, 2], [0, 1], "3 labels"),
        ([], [], "zero samples"),
        ([0.0, 1.0], [0, 1], "integer"),
    ],
)
def test_bad_labels_raise(y_true, y_pred, match):
    with pytest.raises(DermkdError, match=match):
        confusion_matrix(y_true, y_pred, 9)
    with pytest.raises(DermkdError, match=match):
        compute_metrics(y_true, y_pred, NAMES)


def test_bad_probs_shape_raises():
    with pytest.raises(DermkdError, match="probs must have shape"):
        compute_metrics([0, 1], [0, 1], ["a", "b"], probs=np.full((2, 3), 1 / 3))


def test_log_loss_clips_zero_probability():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])  # sample 0's true class 1 has probability 0
    m = compute_metrics([1, 0], [0, 0], ["a", "b"], probs=probs)
    assert m["log_loss"] == pytest.approx((-np.log(1e-15) - np.log(0.5)) / 2, abs=TOL)
