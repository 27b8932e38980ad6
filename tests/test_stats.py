import math

from harness.stats import summarize


def test_summary_against_hand_computed_values():
    s = summarize([10.0, 12.0, 11.0, 13.0, 30.0])
    # sorted: 10 11 12 13 30 -> median 12; |x-12|: 2 0 1 1 18 -> sorted 0 1 1 2 18 -> MAD 1
    assert s.median == 12.0
    assert s.mad == 1.0
    assert s.mean == 15.2
    assert math.isclose(s.stdev, math.sqrt(((-5.2) ** 2 + 3.2**2 + 4.2**2 + 2.2**2 + 14.8**2) / 4))
    assert (s.min, s.max, s.n) == (10.0, 30.0, 5)
    # modified z of 30: 0.6745 * 18 / 1 = 12.1 > 3.5; of 10: 1.35
    assert s.outliers == (4,)
    assert math.isclose(s.spread, 1 / 12)


def test_single_and_empty_samples():
    assert summarize([]) is None
    s = summarize([4.0])
    assert (s.median, s.mad, s.stdev, s.outliers) == (4.0, 0.0, 0.0, ())


def test_no_outlier_within_the_timers_noise():
    # every sample reads "0.04 s": the z-score of the third is 4.7, its distance 7 ms
    assert summarize([0.041, 0.040, 0.048]).outliers == ()
    # the same z-score a whole second away is an outlier
    assert summarize([4.1, 4.0, 4.2, 4.05, 5.1]).outliers == (4,)
