import pytest

from vgcourse.predictions import prediction_report


def test_without_a_prediction_it_asks_for_one_and_still_shows_the_measurement():
    line = prediction_report(None, 0.224, "the factor per unit")
    assert "0.224" in line and "no prediction" in line and "my_prediction" in line


def test_it_compares_prediction_and_measurement():
    assert "measured / predicted = 0.9" in prediction_report(0.25, 0.224, "factor")
    assert "well predicted" in prediction_report(0.23, 0.224, "factor")
    assert "well predicted" not in prediction_report(0.5, 0.224, "factor")
    assert "exactly right" in prediction_report(0, 0.0, "dead fraction")


@pytest.mark.parametrize(("prediction", "measured", "what", "message"), [
    ("0.2", 0.2, "factor", "my_prediction must be a finite number or None"),
    (float("nan"), 0.2, "factor", "my_prediction must be a finite number or None"),
    (0.2, None, "factor", "measured must be a finite number"),
    (0.2, 0.2, " ", "what must name the quantity"),
])
def test_bad_input_is_named(prediction, measured, what, message):
    with pytest.raises(ValueError, match=message):
        prediction_report(prediction, measured, what)
