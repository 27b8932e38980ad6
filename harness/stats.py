"""Summary statistics of timing samples (pure; computed when loading, never stored)."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

# The modified z-score threshold of Iglewicz and Hoaglin, as hyperfine uses it.
OUTLIER_Z = 3.5


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    mad: float  # median absolute deviation, unscaled
    mean: float
    stdev: float  # sample standard deviation; 0 for one sample
    min: float
    max: float
    outliers: tuple[int, ...]  # indices of samples whose modified z-score exceeds OUTLIER_Z

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
    return tuple(i for i, x in enumerate(samples) if abs(modified_z(x, median, mad)) > OUTLIER_Z)
