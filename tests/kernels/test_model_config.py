"""Hostile model archives refused before any deep-learning library reads them (issue 11, items 4 and 5):
bounded entries (sizes, compression methods and ratios, headers that lie), configs inside the
allowlist, and an allowlist that is exactly what dfscan's own architectures serialize to."""

import struct
import tracemalloc
import zipfile

import pytest

from dfscan.kernels.artifact import verify_model

from dfscan.kernels.card import MAX_BATCH_BYTES, MAX_FRAMES, MAX_SIZE

from dfscan.kernels.errors import ArtifactError, ArtifactProblem
from dfscan.kernels.model_config import (
    ALLOWED_ACTIVATIONS,
    ALLOWED_CLASSES,
    ENTRY_LIMITS,
    KERAS_TENSOR,
    MAX_CONFIG_DEPTH,
    check_batch,
    check_config,
    check_input,
    read_model_config,
    references,
)
from tests.hostile_models import (
    HOSTILE_CONFIGS,
    function_reference,
    nested,
    read_config,
    with_activation,
    with_input,
    write_card,
    write_model,
)
from tests.models import save_tiny_model
from dfscan.training.models import ModelConfig, architectures, build_model, save_untrained

MiB = 1 << 20


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """dfscan's tiny test model, saved with its card."""
    return save_tiny_model(tmp_path_factory.mktemp("genuine"), "tiny", frames=2, size=32)


def _refusal(model) -> ArtifactError:
    with pytest.raises(ArtifactError) as refused:
        verify_model(model)
    assert "\n" not in refused.value.message
    return refused.value


REGISTRY_SIZE = 40  # every architecture builds at this size (residual-cnn needs at least 34 pixels)


def _registry_configs(tmp_path):
    """The config.json of every registry architecture as saved, and of a model as training compiles
    and saves it (mixed bfloat16 on a GPU, Adam, categorical cross-entropy: training/fit.py)."""
    import keras

    configs = {}
    for arch in architectures():
        model = save_untrained(arch, 2, REGISTRY_SIZE, 0.05, tmp_path / arch, arch)
        read_model_config(model)  # the whole check, archive included, passes
        configs[arch] = read_config(model)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_model(ModelConfig(arch="cnn-lstm", frames=2, size=REGISTRY_SIZE, width=0.05))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    finally:
        keras.config.set_dtype_policy(previous)
    model.save(tmp_path / "compiled.keras")
    read_model_config(tmp_path / "compiled.keras")
    configs["compiled"] = read_config(tmp_path / "compiled.keras")
    return configs


def test_the_allowlist_is_exactly_what_the_registry_serializes_to(tmp_path):
    """Every architecture passes; and nothing is allowed that none of them uses, so an architecture
    needing a new layer fails here, not in a scan."""
    used_classes: dict[str, set[str]] = {}
    used_activations: set[str] = set()
    for config in _registry_configs(tmp_path).values():
        check_config(config)
        check_input(config, 2, REGISTRY_SIZE)  # each takes the (B, F, S, S, 3) it was built for
        for _, reference in references(config):
            if isinstance(reference, str):
                used_activations.add(reference)
            elif reference["class_name"] != KERAS_TENSOR:
                used_classes.setdefault(reference["module"], set()).add(reference["class_name"])
    assert used_classes == {module: set(names) for module, names in ALLOWED_CLASSES.items()}
    assert used_activations == set(ALLOWED_ACTIVATIONS)


@pytest.mark.parametrize("hostile", sorted(HOSTILE_CONFIGS))
def test_a_config_naming_code_is_refused_in_one_line(genuine, tmp_path, hostile):
    """The card's sha256 matches (the attacker wrote both): the config itself is refused, naming the
    offending entry and where it is."""
    poison, named = HOSTILE_CONFIGS[hostile]
    model = write_model(genuine, tmp_path, config=poison(read_config(genuine)))
    refused = _refusal(model)
    expected = ArtifactProblem.LAMBDA_LAYER if hostile == "Lambda layer" else ArtifactProblem.UNSAFE_CONFIG
    assert refused.problem is expected
    assert refused.message.startswith("model.keras: config.json: 'probs' at config.layers[")
    assert named in refused.message


def test_an_activation_may_be_named_as_a_function_reference(genuine):
    """What Keras's safe mode loads for a public activation: allowed for the allowlisted names only."""
    check_config(with_activation(function_reference("keras.activations", "relu"))(read_config(genuine)))
    with pytest.raises(ArtifactError, match="names the function keras.activations.deserialize") as refused:
        check_config(with_activation(function_reference("keras.activations", "deserialize"))(read_config(genuine)))
    assert refused.value.problem is ArtifactProblem.UNSAFE_CONFIG


def test_the_genuine_model_passes_after_rezipping(genuine, tmp_path):
    """Deflating config.json (as zip tools do) is not a refusal: only what could be a bomb is."""
    model = write_model(genuine, tmp_path, compression=zipfile.ZIP_DEFLATED)
    assert verify_model(model)[1].name == "tiny"


@pytest.mark.parametrize("compression, method", [(zipfile.ZIP_BZIP2, 12), (zipfile.ZIP_LZMA, 14)])
def test_other_compression_methods_are_refused(genuine, tmp_path, compression, method):
    model = write_model(genuine, tmp_path, config=read_config(genuine), compression=compression)
    refused = _refusal(model)
    assert refused.problem is ArtifactProblem.UNSUPPORTED_COMPRESSION
    assert refused.message == (f"model.keras: config.json uses zip compression method {method}; only stored and "
                               f"deflated entries are read")


def _deflate_bomb(path, inflated: int) -> None:
    """A Keras-looking archive whose config.json is ``inflated`` bytes of one JSON object, deflated
    (written a MiB at a time: building it stays small too)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n")
        info = zipfile.ZipInfo("config.json")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as entry:
            entry.write(b'{"a": "')
            for _ in range(inflated // MiB):
                entry.write(b" " * MiB)
            entry.write(b'"}')


def _peak_of_refusal(model) -> tuple[ArtifactError, int]:
    """The refusal of ``model`` and the most memory Python held while it was being checked."""
    tracemalloc.start()
    try:
        with pytest.raises(ArtifactError) as refused:
            verify_model(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return refused.value, peak


@pytest.mark.parametrize("inflated, message", [
    (64 * MiB, "config.json inflates to 67108873 bytes, over the limit of 4194304"),  # the 1 GB, smaller
    (3 * MiB, "more than 200:1 (a decompression bomb)"),  # under the size limit, but compressed a thousandfold
])
def test_a_deflate_bomb_is_refused_without_inflating_it(genuine, tmp_path, inflated, message):
    model = tmp_path / "model.keras"
    _deflate_bomb(model, inflated)
    write_card(genuine, model)
    refused, peak = _peak_of_refusal(model)
    assert refused.problem is ArtifactProblem.OVERSIZED_ENTRY and message in refused.message
    # Refused from the headers: nothing was inflated. (Hashing the file reads it a MiB at a time, so
    # the peak is just over 1 MiB; inflating even the small bomb would take 3.)
    assert peak < 2 * MiB


def _lie_about_size(path, name: str, size: int) -> None:
    """Rewrite the inflated size of entry ``name`` in its local and its central header."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, size_at, name_at in ((b"PK\x03\x04", 22, 30), (b"PK\x01\x02", 24, 46)):
        start = data.find(signature)
        while data[start + name_at:start + name_at + len(encoded)] != encoded:
            start = data.find(signature, start + 4)
        struct.pack_into("<I", data, start + size_at, size)
    path.write_bytes(bytes(data))


def test_a_header_that_lies_cannot_inflate_past_it(genuine, tmp_path):
    """config.json says 1000 bytes but inflates to 64 MiB: the read stops at 1000 and the entry is
    refused (its checksum fails), in bounded memory."""
    model = tmp_path / "model.keras"
    _deflate_bomb(model, 64 * MiB)
    _lie_about_size(model, "config.json", 1000)
    with zipfile.ZipFile(model) as archive:
        assert archive.getinfo("config.json").file_size == 1000  # the lie is what zipfile reads
    write_card(genuine, model)
    refused, peak = _peak_of_refusal(model)
    assert refused.problem is ArtifactProblem.NOT_KERAS
    assert refused.message == ("model.keras: not a readable Keras 3 archive (BadZipFile: Bad CRC-32 for file "
                               "'config.json')")
    assert peak < 2 * MiB


@pytest.mark.parametrize("config_bytes, problem, message", [
    (nested(10_000), ArtifactProblem.UNSAFE_CONFIG, "model.keras: config.json is nested too deeply to parse"),
    (nested(MAX_CONFIG_DEPTH + 1), ArtifactProblem.UNSAFE_CONFIG,
     f"model.keras: config.json: nested deeper than {MAX_CONFIG_DEPTH} levels at config" + "[0]" * MAX_CONFIG_DEPTH),
    (b'{"name": "caf\xe9"}', ArtifactProblem.NOT_KERAS,
     "model.keras: config.json is not UTF-8 (invalid continuation byte at byte 13)"),
    (b'["a list"]', ArtifactProblem.NOT_KERAS, "model.keras: config.json is not a JSON object"),
    (b'{"config": ', ArtifactProblem.NOT_KERAS, "model.keras: config.json is not valid JSON: Expecting value"),
], ids=["10000 deep", "65 deep", "not UTF-8", "a list", "truncated"])
def test_malformed_configs_are_refused_in_one_line(genuine, tmp_path, config_bytes, problem, message):
    refused = _refusal(write_model(genuine, tmp_path, config_bytes=config_bytes))
    assert refused.problem is problem and refused.message.startswith(message)


def test_entries_keras_does_not_write_are_refused(genuine, tmp_path):
    refused = _refusal(write_model(genuine, tmp_path, extra={"assets/run.sh": b"rm -rf /"}))
    assert refused.problem is ArtifactProblem.NOT_KERAS
    assert "an unexpected entry 'assets/run.sh'" in refused.message
    assert set(ENTRY_LIMITS) == {"config.json", "metadata.json", "model.weights.h5"}


# --- the model's input (night-safety item 3) --------------------------------------------------------

def test_a_model_asking_for_100000_frames_of_4096_pixels_is_refused_from_its_card(genuine, tmp_path):
    """The config and the card agree, and the sha256 matches: the numbers themselves are refused."""
    model = write_model(genuine, tmp_path, config=with_input(100_000, 4096)(read_config(genuine)),
                        card={"frames": 100_000, "size": 4096})
    refused = _refusal(model)
    assert refused.problem is ArtifactProblem.OVERSIZED_INPUT
    assert refused.message == (f"model.json: asks for 100000 frames of 4096x4096 pixels; dfscan reads at most "
                               f"{MAX_FRAMES} frames of at most {MAX_SIZE}x{MAX_SIZE} pixels")


def test_a_config_input_over_the_limits_is_refused_behind_a_modest_card(genuine, tmp_path):
    model = write_model(genuine, tmp_path, config=with_input(100_000, 4096)(read_config(genuine)))
    refused = _refusal(model)  # the card still says 2 frames of 32x32
    assert refused.problem is ArtifactProblem.OVERSIZED_INPUT
    assert refused.message == (f"model.keras: config.json: its input asks for 100000 frames of 4096x4096 pixels; "
                               f"dfscan reads at most {MAX_FRAMES} frames of at most {MAX_SIZE}x{MAX_SIZE} pixels")


@pytest.mark.parametrize("frames, size, card, message", [
    (20, 32, {}, "its input takes 20 frames of 32x32x3 but the card says 2 frames of 32x32x3"),
    (2, 224, {}, "its input takes 2 frames of 224x224x3 but the card says 2 frames of 32x32x3"),
    (2, 32, {"frames": 20, "size": 224},
     "its input takes 2 frames of 32x32x3 but the card says 20 frames of 224x224x3"),
], ids=["frames", "size", "card"])
def test_a_card_and_a_config_that_disagree_are_refused(genuine, tmp_path, frames, size, card, message):
    model = write_model(genuine, tmp_path, config=with_input(frames, size)(read_config(genuine)), card=card)
    refused = _refusal(model)
    assert refused.problem is ArtifactProblem.INPUT_MISMATCH
    assert refused.message == f"model.keras: config.json: {message}"


@pytest.mark.parametrize("change", ["no input layers", "two inputs", "4-d input", "None frames"])
def test_a_config_without_one_clip_input_is_refused(genuine, change):
    config = read_config(genuine)
    layer = next(x for x in config["config"]["layers"] if x["class_name"] == "InputLayer")
    if change == "no input layers":
        del config["config"]["input_layers"]
    elif change == "two inputs":
        config["config"]["input_layers"] = [["frames", 0, 0], ["frames", 0, 0]]
    else:
        layer["config"]["batch_shape"] = [None, 32, 32, 3] if change == "4-d input" else [None, None, 32, 32, 3]
    with pytest.raises(ArtifactError, match=r"is not \(batch, frames, size, size, 3\)") as refused:
        check_input(config, 2, 32)
    assert refused.value.problem is ArtifactProblem.INPUT_MISMATCH


def test_a_batch_over_the_byte_limit_is_refused_naming_the_batch_size_that_fits():
    check_batch(64, 20, 224, "model.json")  # resnet50-lstm, 193 MB: far inside
    check_batch(2, MAX_FRAMES, MAX_SIZE, "model.json")  # the largest clips, 1.6 GB
    with pytest.raises(ArtifactError) as refused:
        check_batch(3, MAX_FRAMES, MAX_SIZE, "model.json")
    assert refused.value.problem is ArtifactProblem.OVERSIZED_INPUT
    assert refused.value.message == (f"model.json: a batch of 3 clips of 256 frames of 1024x1024 pixels holds "
                                     f"2415919104 bytes, over the limit of {MAX_BATCH_BYTES} bytes a batch; use "
                                     f"--batch-size 2 or less")
