"""How far a model can be trusted, read from the metrics its card records.

Editors act on what the app says, so a model no better than a coin must never look like a confident
detector. Training and ``dfscan evaluate`` judge their fresh metrics here; the report and the web app
judge a card here; all of them word it the same way. The verdict rule itself, and the inconclusive
band around its threshold, live beside the card in ``kernels.artifact``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

NEAR_CHANCE = 0.1  # an AUC within this of 0.5 cannot tell real from fake
FEW_VIDEOS = 30  # fewer test videos than this: the AUC's error bar is wider than the numbers suggest
CLASS_WORDS = ("real", "fake")  # confusion rows/columns, in training.metrics' order


def _problems(metrics: Mapping | None, part: str) -> list[tuple[bool, str]]:
    """(grave, words) for each problem with one part's metrics; a grave one makes the model untrusted."""
    of = "" if part == "all" else f"{part} "  # `dfscan evaluate --split all` measures every video
    if not metrics:
        return [(True, f"no {of}metrics recorded")]
    problems = []
    auc, n_videos = metrics.get("roc_auc"), int(metrics.get("n_videos") or 0)
    if auc is None:
        problems.append((True, f"no {of}AUC (the {of}videos lack a real or a fake one)"))
    elif abs(auc - 0.5) < NEAR_CHANCE:
        problems.append((True, f"{of}AUC {auc:.2f} is near chance (0.5): the model does not tell real from fake"))
    elif auc < 0.5:
        problems.append((True, f"{of}AUC {auc:.2f} is below chance: it ranks fakes as real (swapped labels?)"))
    confusion = metrics.get("confusion")
    if confusion and n_videos:
        called = [confusion[0][c] + confusion[1][c] for c in (0, 1)]  # videos called real, called fake
        problems += [(True, f"it calls every {of}video {word}")
                     for column, word in enumerate(CLASS_WORDS) if called[column] == n_videos]
    if 0 < n_videos < FEW_VIDEOS:
        problems.append((False, f"measured on only {n_videos} {of}videos"))
    return problems


def metric_warnings(metrics: Mapping | None, part: str = "test") -> list[str]:
    """Plain-words problems with one part's metrics (``training.metrics.binary_metrics``); [] when
    nothing is wrong."""
    return [words for _, words in _problems(metrics, part)]


def grave_warnings(metrics: Mapping | None, part: str = "test") -> list[str]:
    """Only the problems that make a model untrusted: no metrics or no AUC, an AUC near or below
    chance, one class called for every video."""
    return [words for grave, words in _problems(metrics, part) if grave]


def untrusted(metrics: Mapping | None, part: str = "test") -> bool:
    return bool(grave_warnings(metrics, part))


@dataclasses.dataclass(frozen=True)
class Trust:
    """What a card says about its model's measured quality, and what is wrong with it."""

    part: str  # the part measured: "test", else "val"
    auc: float | None
    accuracy: float | None
    n_videos: int | None
    dataset: str | None  # the dataset's folder name
    synthetic: bool  # trained and tested on `dfscan synth` videos only
    untrusted: bool  # near chance, or one class for everything, or nothing measured
    warnings: tuple[str, ...]

    def summary(self) -> str:
        """One line: ``test AUC 0.97, accuracy 0.93 on 48 videos of 'archive' (synthetic)``."""
        if self.auc is None and self.accuracy is None:
            return "no measured quality on its card"
        auc = "n/a" if self.auc is None else f"{self.auc:.2f}"
        accuracy = "n/a" if self.accuracy is None else f"{self.accuracy:.2f}"
        where = f" of {self.dataset!r}" if self.dataset else ""
        return (f"{self.part} AUC {auc}, accuracy {accuracy} on {self.n_videos or 0} videos{where}"
                + (" (synthetic)" if self.synthetic else ""))

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "warnings": list(self.warnings), "summary": self.summary()}


def card_trust(card: Mapping) -> Trust:
    """Judge a model card (a ``ModelCard`` or its raw mapping)."""
    recorded = card.get("metrics") or {}
    part = "test" if recorded.get("test") else "val"
    metrics = recorded.get(part) or {}
    dataset = card.get("dataset") or {}
    synthetic = bool(dataset.get("synthetic"))
    warnings = metric_warnings(metrics, part)
    if synthetic:
        warnings.append("trained and tested on synthetic videos only (dfscan synth), never on real deepfakes")
    root = str(dataset.get("root") or "").rstrip("/")
    return Trust(part=part, auc=metrics.get("roc_auc"), accuracy=metrics.get("accuracy"),
                 n_videos=metrics.get("n_videos"), dataset=root.rsplit("/", 1)[-1] or None, synthetic=synthetic,
                 untrusted=untrusted(metrics, part), warnings=tuple(warnings))


def explain_p_fake(threshold: float, band: float) -> str:
    """The one sentence that says what p_fake and the threshold mean."""
    sentence = (f"p_fake is the model's estimate, from 0 to 1, that the video is fake: at or above {threshold:g} "
                f"it is called fake, below it real")
    if band > 0:
        sentence += (f", and within {band:g} of {threshold:g} (between {max(0.0, threshold - band):g} and "
                     f"{min(1.0, threshold + band):g}) it is inconclusive")
    return sentence + "; it is a score from one model, not proof."


def format_p_fake(p_fake: float | None) -> str:
    """p_fake for a person, never rounded to certainty: two decimals, but above 0.99 "> 0.99" and below
    0.01 "< 0.01" (0.9953 is not 1.00: no model output is proof)."""
    if p_fake is None:
        return "n/a"
    p_fake = float(p_fake)
    if p_fake > 0.99:
        return "> 0.99"
    if p_fake < 0.01:
        return "< 0.01"
    return f"{p_fake:.2f}"
