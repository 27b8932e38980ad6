"""Summary statistics of timing samples (pure; computed when loading, never stored)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

# The modified z-score threshold of Iglewicz and Hoaglin, as hyperfine uses it.
OUTLIER_Z = 3.5
# Nor is a sample an outlier within 50 ms of the median: three cached builds of 0.041,
# 0.040 and 0.048 s have a MAD of 1 ms, so the z-score alone flags the third, though every
# sample reads "0.04 s" and the difference is the timer's noise, not interference.
OUTLIER_FLOOR_SECONDS = 0.05


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mad: float  # median absolute deviation, unscaled
    mean: float
    stdev: float  # sample standard deviation; 0 for one sample
    min: float
    max: float
    outliers: tuple[int, ...]  # indices of samples beyond OUTLIER_Z and OUTLIER_FLOOR_SECONDS

    @property
    def spread(self) -> float:
        """MAD relative to the median: the noise figure a reader should look at."""
        return self.mad / self.median if self.median else 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["outliers"] = list(self.outliers)
        return d


def summarize(samples: list[float]) -> Summary | None:
    if not samples:
        return None
    med = statistics.median(samples)
    mad = statistics.median(abs(x - med) for x in samples)
    stdev = statistics.stdev(samples) if len(samples) > 1 else 0.0
    return Summary(len(samples), med, mad, statistics.fmean(samples), stdev,
                   min(samples), max(samples), outliers(samples, med, mad))


def modified_z(x: float, median: float, mad: float) -> float:
    return 0.6745 * (x - median) / mad if mad else 0.0


def outliers(samples: list[float], median: float, mad: float) -> tuple[int, ...]:
    return tuple(i for i, x in enumerate(samples) if abs(modified_z(x, median, mad)) > OUTLIER_Z
                 and abs(x - median) >= OUTLIER_FLOOR_SECONDS)
