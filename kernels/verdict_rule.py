"""The verdict rule, defined once: the threshold's call, and what a person should read from one p_fake.

Every consumer of a model (scan workers, the web app, training's metrics, ``dfscan evaluate``) calls these;
the card (``kernels.card``) holds the threshold and the band, the scope (``kernels.scope``) decides when
a clip is ``untested`` whatever p_fake says.
"""

from __future__ import annotations

# Half-width of the band around the threshold where a verdict reads "inconclusive": a p_fake of 0.47
# against a threshold of 0.5 is a coin toss, not a "real". A card may set its own; older cards get this.
INCONCLUSIVE_BAND = 0.1
# "untested": the clip lies outside what the model was measured on (kernels.scope); p_fake says nothing.
UNTESTED = "untested"
CONCLUSIONS = ("real", "fake", "inconclusive", UNTESTED)


def called_fake(p_fake, threshold: float):
    """The verdict rule, the one definition of it: fake at or above the card's threshold, real below.
    A scalar gives a bool, an array an array of bools (training's metrics score whole test sets)."""
    import numpy as np

    called = np.asarray(p_fake) >= threshold
    return bool(called) if called.ndim == 0 else called


def conclusion(p_fake: float, threshold: float, band: float) -> str:
    """What a person should read from one p_fake: "inconclusive" when it lies strictly within ``band``
    of the threshold, else the verdict rule's "fake" or "real". ``band=0`` never says inconclusive."""
    if threshold - band < float(p_fake) < threshold + band:
        return "inconclusive"
    return "fake" if called_fake(p_fake, threshold) else "real"
