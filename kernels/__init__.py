"""Everything that touches pixels: probe, frame sampling, decoders, resize and the compiled predict step.

Scanning (``scanner``) and training (``training``) meet only here, so a model sees the same frames
in training as when it scans.
"""
