"""facekit.evaluate: known-answer confusion matrices, group accuracy, most-wrong, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from facekit.data import Dataset
from facekit.evaluate import (
    Evaluation,
    confusion_matrix,
    group_accuracy,
    most_wrong,
    per_class_accuracy,
    reliability,
)


def test_confusion_matrix_known_answer():
    y_true = np.array([0, 0, 1, 1, 1, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert per_class_accuracy(cm).tolist() == pytest.approx([0.5, 2 / 3, 1.0])
    perfect = confusion_matrix(np.arange(4), np.arange(4), 4)
    assert np.array_equal(perfect, np.eye(4, dtype=int))


def test_confusion_matrix_rejects_bad_labels_and_handles_empty_classes():
    with pytest.raises(ValueError, match=r"y_pred must lie in 0..2; found 0..3"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)
    acc = per_class_accuracy(confusion_matrix(np.array([0, 0]), np.array([0, 1]), 3))
    assert acc[0] == 0.5 and np.isnan(acc[2])


def _tiny(attrs):
    n = len(next(iter(attrs.values())))
    return Dataset(np.zeros((n, 4, 4, 3), np.uint8), np.array([0, 1] * (n // 2)), ("a", "b"),
                   attributes=attrs)


def test_group_accuracy_per_attribute_value():
    ds = _tiny({"glasses": np.array([True, True, False, False]),
                "age": np.array([5, 25, 70, 33])})
    pred = np.array([0, 0, 0, 1])  # right, wrong, right, right
    assert group_accuracy(ds, pred, "glasses") == {"no": (1.0, 2), "yes": (0.5, 2)}
    by_age = group_accuracy(ds, pred, "age")
    assert by_age == {"0-12": (1.0, 1), "20-29": (0.0, 1), "30-39": (1.0, 1), "60+": (1.0, 1)}
    with pytest.raises(KeyError, match="no attribute 'race'"):
        group_accuracy(ds, pred, "race")


def test_most_wrong_orders_confident_mistakes_first():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([0, 0, 1, 0])  # rows 1, 2, 3 are wrong; p(true) = 0.2, 0.4, 0.05
    assert most_wrong(probs, labels, k=2).tolist() == [3, 1]
    assert most_wrong(probs, labels, k=10).tolist() == [3, 1, 2]


def test_reliability_known_answer():
    # 4 images at confidence 0.95 (all right), 4 at 0.55 (two right): bins 0.9-1.0 and 0.5-0.6
    probs = np.array([[0.95, 0.05]] * 4 + [[0.55, 0.45]] * 4)
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    rel = reliability(probs, labels, n_bins=10)
    assert rel.counts.tolist() == [0, 0, 0, 0, 0, 4, 0, 0, 0, 4]
    assert rel.accuracy[9] == 1.0 and rel.accuracy[5] == 0.5
    assert rel.ece == pytest.approx((4 * 0.05 + 4 * 0.05) / 8)
    assert np.isnan(rel.confidence[0])


def test_evaluation_summary_names_the_weakest_class_and_confusions():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    ev = Evaluation(("a", "b"), probs, labels, confusion_matrix(labels, probs.argmax(1), 2), {},
                    reliability(probs, labels))
    assert ev.accuracy == 0.5 and ev.per_class == {"a": 0.5, "b": 0.5}
    assert ev.most_confused() == [("b", "a", 1), ("a", "b", 1)]
    assert "accuracy 0.500 on 4 images" in str(ev)


def test_evaluation_summary_wraps_long_lines_on_word_boundaries():
    # chapter 06's line: three confusions between "+glasses" classes run past 100 characters
    names = ("bald+glasses", "long+glasses", "mohawk+glasses", "short+glasses")
    labels = np.array([1] * 7 + [3] * 6 + [2] * 5)
    pred = np.array([3] * 7 + [0] * 6 + [0] * 5)
    probs = np.eye(4)[pred]
    ev = Evaluation(names, probs, labels, confusion_matrix(labels, pred, 4), {}, reliability(probs, labels))
    one_line = ("most confused: long+glasses -> short+glasses (7), short+glasses -> bald+glasses (6), "
                "mohawk+glasses -> bald+glasses (5)")
    assert len(one_line) > 100
    lines = str(ev).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("most confused:"))
    wrapped = lines[start:]
    assert len(wrapped) == 2 and all(len(line) <= 100 for line in lines)
    assert wrapped[1].startswith("  ")  # the continuation is indented (facekit.text.wrap's hang)
    assert " ".join(line.strip() for line in wrapped) == one_line  # broken at spaces only
