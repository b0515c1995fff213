"""Models and training on the scanner's own input pipeline (``dfscan.kernels``).

One concept per module: ``models`` (the registry), ``layouts`` (finding labelled videos: folders,
Celeb-DF v2, and through ``faceforensics`` and ``dfdc`` those datasets' own trees and splits), ``splits``
(train/val/test without leaks), ``clip_cache`` (clips read through kernels, remembered), ``batches``
(class-balanced), ``augment``, ``synth`` and ``portrait`` (synthetic labelled archives), ``self_blend``
and ``synth_from`` (SBI's self-blended fakes, from a user's own footage too), ``fit`` (training and the
run folder, with the card's scope), ``precise_bn``, ``evaluate`` and ``metrics``. The model file itself
is ``dfscan.kernels.artifact``'s. Nothing is imported here, so importing the package starts no TensorFlow.
"""
