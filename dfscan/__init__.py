"""dfscan decides, at scale, whether videos are real or deepfakes.

One installed package, four floors and a top: ``dfscan.kernels`` (everything one video goes through),
``dfscan.training`` and ``dfscan.scanner`` (which meet only in kernels), ``dfscan.benchmarks``, and here
the top floor that nothing imports: ``dfscan.cli`` (the command line) and ``dfscan.demo``. In a checkout
the floors keep their own top-level folders; pyproject.toml maps them to these names.
"""
