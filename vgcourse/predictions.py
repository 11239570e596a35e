"""The learner's prediction next to the measured value, for the course's "predict, then run" cells."""

from __future__ import annotations

import math
from numbers import Real


def prediction_report(prediction: Real | None, measured: Real, what: str) -> str:
    """One line comparing the learner's ``prediction`` of ``what`` with the ``measured`` value.

    Args:
        prediction: the learner's number, or ``None`` when they have not written one yet.
        measured: the value the notebook measured.
        what: a few words naming the quantity, e.g. ``"the per-layer factor"``.

    Returns:
        With no prediction, a line asking for one; otherwise both values and the ratio
        measured / predicted.
    """
    if not isinstance(what, str) or not what.strip():
        raise ValueError(f"what must name the quantity in a few words, got {what!r}")
    if isinstance(measured, bool) or not isinstance(measured, Real) or not math.isfinite(measured):
        raise ValueError(f"measured must be a finite number, got {measured!r}")
    if prediction is None:
        return (f"{what}: measured {measured:.3g}. You wrote no prediction: write your number in the "
                f"cell above (my_prediction = ...) and run both cells again before reading on.")
    if isinstance(prediction, bool) or not isinstance(prediction, Real) or not math.isfinite(prediction):
        raise ValueError(f"my_prediction must be a finite number or None, got {prediction!r}")
    if prediction == 0:
        comparison = "exactly right" if measured == 0 else "you predicted 0"
    else:
        ratio = measured / prediction
        comparison = (f"measured / predicted = {ratio:.2g}"
                      + (" (within 10 %: well predicted)" if abs(ratio - 1) <= 0.1 else ""))
    return f"{what}: you predicted {prediction:.3g}, measured {measured:.3g}; {comparison}"
