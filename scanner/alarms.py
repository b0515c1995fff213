"""Scan-level alarms: what a run's rows, taken together, say about whether the model measured them.

One verdict can look reasonable while the whole night is nonsense: a model that calls 215 of 215 real
clips fake at p_fake 0.98-0.995 is not measuring those files. The alarms are computed once from the
rows (``OutcomeStats``, fed row by row in bounded memory by the driver, or from a table by the report
and the web app) and the model's scope (``kernels.scope``); ``dfscan run`` prints them (and exits 1 on
them with ``--fail-on-alarm``), ``dfscan report`` and the web app show them first. Each alarm names the
number it is based on, and its threshold is a constant here, documented in the README:

- ``ONE_CLASS``: at least ``ONE_CLASS_SHARE`` of at least ``MIN_FILES`` files got the same verdict, and
  either that verdict is fake or the p_fake values are collapsed (5th to 95th percentile within
  ``COLLAPSED_SPREAD``): an archive that is mostly real is normal, a model with one answer is not.
- ``DISTRIBUTION_SHIFT``: the run's p_fake distribution lies farther than ``SHIFT_DISTANCE`` from every
  mix of the card's real and fake test distributions, by the Kolmogorov-Smirnov distance (the largest
  gap between the two cumulative distributions), the mix's share of fakes fitted in steps of 5 %.
- ``FEW_FACES``: a face model found a face in fewer than ``FEW_FACES_SHARE`` of the files.
- ``OUT_OF_RANGE``: more than ``OUT_OF_RANGE_SHARE`` of the files lie far outside the source resolutions
  the card saw (``kernels.scope.outside``).
- ``UNTESTED``: more than ``UNTESTED_SHARE`` of the conclusions are ``untested``, with the commonest reason.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from dfscan.kernels.scope import ClipFacts, Scope, outside

MIN_FILES = 10  # fewer files than this say nothing about a model as a whole
ONE_CLASS_SHARE = 0.95
COLLAPSED_SPREAD = 0.02
SHIFT_DISTANCE = 0.4  # with a card's 50-odd test videos, sampling alone moves the distance by up to ~0.3
SHIFT_MIN_FILES = 20
FEW_FACES_SHARE = 0.5
OUT_OF_RANGE_SHARE = 0.5
UNTESTED_SHARE = 0.5
BINS = 1000  # the run's p_fake histogram: exact to 0.001, a few kilobytes whatever the archive's size
_MAX_REASONS = 50  # distinct untested reasons kept; the rest count as one


class AlarmKind(str, enum.Enum):
    ONE_CLASS = "ONE_CLASS"
    DISTRIBUTION_SHIFT = "DISTRIBUTION_SHIFT"
    FEW_FACES = "FEW_FACES"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNTESTED = "UNTESTED"


@dataclasses.dataclass(frozen=True)
class Alarm:
    kind: AlarmKind
    message: str  # one sentence for a person, naming the number
    value: float  # the number it is based on (a share, or a distance)

    def as_dict(self) -> dict:
        return {"kind": self.kind.value, "message": self.message, "value": round(float(self.value), 4)}


def _cdf(levels: list[float], values: list[float], grid: np.ndarray) -> np.ndarray:
    """A class's p_fake CDF from its recorded quantiles, linear between them."""
    return np.interp(grid, np.asarray(values, dtype=np.float64), np.asarray(levels, dtype=np.float64),
                     left=0.0, right=1.0)


def shift_distance(histogram: np.ndarray, test_p_fake: Mapping) -> float | None:
    """The smallest Kolmogorov-Smirnov distance between the run's p_fake histogram (``BINS`` bins over
    [0, 1]) and a mix of the card's two test distributions; None when the card lacks either class."""
    levels, real, fake = test_p_fake.get("levels"), test_p_fake.get("real"), test_p_fake.get("fake")
    if not levels or not real or not fake or histogram.sum() == 0:
        return None
    grid = np.linspace(0.0, 1.0, BINS + 1)[1:]  # each bin's upper edge
    run = np.cumsum(histogram) / histogram.sum()  # share of the run at or below each edge
    real_cdf, fake_cdf = _cdf(levels, real, grid), _cdf(levels, fake, grid)
    return float(min(np.abs(run - (w * fake_cdf + (1 - w) * real_cdf)).max() for w in np.linspace(0, 1, 21)))


class OutcomeStats:
    """Counts over a run's rows, in memory that does not grow with the archive, and the alarms they
    raise. ``add`` takes a verdict row (a dict of ``scanner.verdicts`` columns)."""

    def __init__(self, scope: Scope | None):
        self.scope = scope
        self.files = 0  # ok rows
        self.called = collections.Counter()  # verdict -> files
        self.histogram = np.zeros(BINS, dtype=np.int64)
        self.p_low, self.p_high = 1.0, 0.0
        self.face_rows = self.faces_found = 0
        self.out_of_range = 0
        self.untested = 0
        self.reasons = collections.Counter()

    def add(self, row: Mapping) -> None:
        if row.get("status") != "ok" or row.get("p_fake") is None:
            return
        self.files += 1
        p_fake = float(row["p_fake"])
        self.called[row.get("verdict")] += 1
        self.histogram[min(BINS - 1, max(0, int(p_fake * BINS)))] += 1
        self.p_low, self.p_high = min(self.p_low, p_fake), max(self.p_high, p_fake)
        facts = ClipFacts.of_row(row)
        if facts.face_found is not None:
            self.face_rows += 1
            self.faces_found += facts.face_found
        if self.scope is not None and outside(facts.long_side, self.scope.long_side):
            self.out_of_range += 1
        if row.get("conclusion") == "untested":
            self.untested += 1
            reason = row.get("untested_reason") or "no reason recorded"
            if reason in self.reasons or len(self.reasons) < _MAX_REASONS:
                self.reasons[reason] += 1

    def add_table(self, table: pa.Table) -> OutcomeStats:
        for batch in table.to_batches(max_chunksize=65536):
            for row in batch.to_pylist():
                self.add(row)
        return self

    def _percentile(self, q: float) -> float:
        """The p_fake at or below which ``q`` of the files lie (the histogram's bin upper edge)."""
        position = np.searchsorted(np.cumsum(self.histogram), q * self.files, side="left")
        return min(1.0, (position + 1) / BINS)

    def alarms(self) -> list[Alarm]:
        alarms = []
        n = self.files
        if n >= MIN_FILES:
            verdict, k = self.called.most_common(1)[0]
            collapsed = self._percentile(0.95) - self._percentile(0.05) <= COLLAPSED_SPREAD
            if k / n >= ONE_CLASS_SHARE and (verdict == "fake" or collapsed):
                alarms.append(Alarm(AlarmKind.ONE_CLASS, f"the model called {k} of {n} files {verdict} (p_fake "
                                    f"{self.p_low:.3f}-{self.p_high:.3f}): a model that gives one answer to everything is not "
                                    f"measuring these files", k / n))
        if n >= SHIFT_MIN_FILES and self.scope is not None and self.scope.test_p_fake:
            distance = shift_distance(self.histogram, self.scope.test_p_fake)
            if distance is not None and distance > SHIFT_DISTANCE:
                alarms.append(Alarm(AlarmKind.DISTRIBUTION_SHIFT, f"the files' p_fake distribution is {distance:.2f} "
                                    f"(Kolmogorov-Smirnov distance, alarm above {SHIFT_DISTANCE}) from every mix of "
                                    f"the model's real and fake test videos: these files do not score like the "
                                    f"videos it was measured on", distance))
        if self.face_rows >= 1 and self.faces_found / self.face_rows < FEW_FACES_SHARE:
            share = self.faces_found / self.face_rows
            alarms.append(Alarm(AlarmKind.FEW_FACES, f"the face model found a face in {self.faces_found} of "
                                f"{self.face_rows} files ({share:.0%}): the rest were scored on whole frames it was "
                                f"never trained on", share))
        if n and self.out_of_range / n > OUT_OF_RANGE_SHARE:
            low, high = self.scope.long_side
            alarms.append(Alarm(AlarmKind.OUT_OF_RANGE, f"{self.out_of_range} of {n} files "
                                f"({self.out_of_range / n:.0%}) are far outside the resolutions the model was measured "
                                f"on ({low:g}-{high:g} px on the long side)", self.out_of_range / n))
        if n and self.untested / n > UNTESTED_SHARE:
            reason = self.reasons.most_common(1)[0][0]
            alarms.append(Alarm(AlarmKind.UNTESTED, f"{self.untested} of {n} conclusions are untested, most because "
                                f"{reason}", self.untested / n))
        return alarms


def table_alarms(table: pa.Table, scope: Scope | None) -> list[Alarm]:
    """The alarms of a table of verdict rows (a run's, or the newest per file of one model)."""
    return OutcomeStats(scope).add_table(table).alarms()
