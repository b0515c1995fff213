"""Models and training on the scanner's own input pipeline (``kernels``).

One concept per module: ``models`` (the registry), ``synth`` (synthetic labelled archives), ``data``
(layouts, splits, balanced batches, augmentation), ``fit`` (training and the run folder),
``evaluate`` (video-level evaluation), ``metrics`` (numpy metrics) and ``artifact`` (safe save/load).
Nothing is imported here, so importing ``training`` does not start TensorFlow.
"""
