"""Session-wide test settings. Media is generated per test into tmp_path (see tests/media.py)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if "KERAS_BACKEND" not in os.environ:
    # TensorFlow where it is installed (CI); the GPU machine has none and runs Keras on JAX.
    import importlib.util

    os.environ["KERAS_BACKEND"] = "tensorflow" if importlib.util.find_spec("tensorflow") else "jax"

import pytest  # noqa: E402

from dfscan.kernels.decode import gpu_count  # noqa: E402


# Tests that start Ray, train a model or drive a browser take most of the suite's minutes. They are
# marked here, from what they use, so that `pytest -m "not ray and not training and not browser"` is the
# shorter loop (minutes on 2 loaded cores: see README "Set up"); CI runs everything.
_SLOW_FILES = {"ray": ("tests/scanner/test_cluster.py", "tests/scanner/test_corpus.py", "tests/scanner/test_demo.py",
                       "tests/scanner/test_faults.py", "tests/scanner/test_run.py", "tests/benchmarks/test_bench.py",
                       "tests/benchmarks/test_gpu_check.py", "tests/scanner/test_ray_local.py"),
               "training": ("tests/training/",),
               "browser": ("tests/webapp/test_browser.py", "tests/webapp/test_launch.py")}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::")[0]
        for marker, prefixes in _SLOW_FILES.items():
            if path.startswith(prefixes):
                item.add_marker(marker)
        if "ray_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker("ray")
    if gpu_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU")
    for item in items:
        if item.get_closest_marker("gpu") is not None:  # a marker, not a keyword: a folder named gpu is not one
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_cluster():
    """The one Ray cluster of the test session: 2 logical CPUs and 2 logical GPUs (there is no real
    GPU; the scanner falls back to CPU decoding and inference on them). Yields its address."""
    import ray

    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             configure_logging=True)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
