"""The question's data script as a function, kept line for line (its bugs included).

Used by the notebooks (to show its pitfalls), the tests and the benchmarks (as the baseline).
Do not use it to load data: use `facekit.data.load_folder`.
"""

from __future__ import annotations

import os
import random

import cv2
import numpy as np

__all__ = ["question_data_script"]


def question_data_script(datadir: str = "./TRAINING", width: int = 200, height: int = 200,
                         per_class: int = 700, verbose: bool = True
                         ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Run the question's data script on ``datadir``; return (X, y, CATEGORIES).

    Its pitfalls, on purpose: class order from unsorted ``os.listdir``; the first ``per_class``
    files in *directory order*; OpenCV's BGR channel order; errors printed, not recorded.
    """
    CATEGORIES = []  # noqa: N806 - the question's names
    for CATEGORY in os.listdir(datadir):  # noqa: N806
        CATEGORIES.append(CATEGORY)
    training_data = []
    for category in CATEGORIES:
        path = os.path.join(datadir, category)
        class_num = CATEGORIES.index(category)
        for img in os.listdir(path)[:per_class]:
            try:
                img_array = cv2.imread(os.path.join(path, img), cv2.IMREAD_COLOR)
                new_array = cv2.resize(img_array, (width, height))
                training_data.append([new_array, class_num])
            except Exception as error:  # noqa: BLE001 - as the question did
                if verbose:
                    print(error)
    random.shuffle(training_data)
    X = []  # noqa: N806
    y = []
    for features, label in training_data:
        X.append(features)
        y.append(label)
    X = np.array(X).reshape(-1, width, height, 3)  # noqa: N806
    y = np.array(y)
    return X, y, CATEGORIES
