"""What a ``.keras`` archive may hold before any deep-learning library sees it: bounded reads of its
entries, and a walk of its serialized config against the Keras classes dfscan's own models use.

The attacker controls both the model file and its card, so the card's sha256 proves nothing here.
Everything is checked in the scan's driver, before Ray starts, with the standard library only:
- every entry is one of Keras's three names, stored or deflated, not encrypted, within a size limit
  and a compression ratio, so a few kilobytes cannot inflate to gigabytes (entries are read through
  ``ZipFile.open`` with a byte limit, so a header that lies about a size cannot either);
- ``config.json`` is UTF-8 JSON, nested no deeper than ``MAX_CONFIG_DEPTH``, and names only the
  modules, classes and activations in the allowlist below. Keras's safe mode would refuse some of
  the rest inside a worker, after Ray started; this refuses all of it up front, in one line;
- the model's input is the ``(B, F, S, S, 3)`` its card says, within ``kernels.artifact``'s limits on
  frames and pixels, and a batch of clips within its byte limit: a worker asked for more dies
  allocating it.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

from dfscan.kernels.card import MAX_BATCH_BYTES, MAX_FRAMES, MAX_SIZE

from dfscan.kernels.errors import ArtifactError, ArtifactProblem

CONFIG_ENTRY = "config.json"
METADATA_ENTRY = "metadata.json"
WEIGHTS_ENTRY = "model.weights.h5"
# The most each entry may hold once inflated. dfscan's largest config (resnet50-lstm) is 186 KB and its
# metadata 64 bytes; the config is parsed in memory (about ten times its size as Python objects), so
# its limit is what bounds the driver. The weights are only hashed here, but workers read them whole:
# resnet50-lstm's are 107 MB.
ENTRY_LIMITS: dict[str, int] = {CONFIG_ENTRY: 4 << 20, METADATA_ENTRY: 64 << 10, WEIGHTS_ENTRY: 4 << 30}
# Keras stores entries uncompressed; a re-zipped config deflates about 13x (cnn-lstm) to 39x
# (resnet50-lstm) at level 9. Far beyond that is a bomb, whatever its declared size.
MAX_COMPRESSION_RATIO = 200
_READ_PIECE = 64 << 10  # zipfile inflates up to as many bytes as one read asks for
ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
# dfscan's configs nest 10 (cnn-lstm) and 16 (resnet50-lstm, a model inside TimeDistributed) levels deep.
MAX_CONFIG_DEPTH = 64

# The allowlist, derived (not guessed) from what dfscan's registry serializes to: every architecture
# of training.models built with backbone_weights="none" at a small size, plus the compiled, mixed-bfloat16
# model training saves, and every (module, class_name) found anywhere in their config.json. Adding an
# architecture that needs another class fails tests/kernels/test_model_config.py until it is added here.
ALLOWED_CLASSES: dict[str, frozenset[str]] = {
    "keras": frozenset({"DTypePolicy"}),
    "keras.initializers": frozenset({"GlorotUniform", "Ones", "Orthogonal", "Zeros"}),
    "keras.layers": frozenset({
        "Activation", "Add", "BatchNormalization", "Bidirectional", "Conv2D", "Dense", "DepthwiseConv2D",
        "Dropout", "Flatten", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "InputLayer", "LSTM",
        "MaxPooling2D", "ReLU", "Rescaling", "TimeDistributed", "ZeroPadding2D"}),
    "keras.optimizers": frozenset({"Adam"}),  # compile_config of a trained model
    "keras.src.models.functional": frozenset({"Functional"}),
}
# Keras's marker for a tensor passed between layers (in inbound_nodes): a class_name with no module.
KERAS_TENSOR = "__keras_tensor__"
# Keras writes a layer's activations by name (never as a function object), resolved in keras.activations.
ACTIVATION_KEYS = ("activation", "recurrent_activation")
ALLOWED_ACTIVATIONS = frozenset({"linear", "relu", "sigmoid", "softmax", "tanh"})
# A function object is accepted only as one of those activations, in keras.activations; anything else
# (builtins.eval, os.system, keras.utils.get_file) is code a config must not name.
ALLOWED_FUNCTION_MODULES = frozenset({"keras.activations"})


def _refuse(source: str, message: str, problem: ArtifactProblem = ArtifactProblem.UNSAFE_CONFIG) -> ArtifactError:
    return ArtifactError(problem, f"{source}: {message}")


def check_entries(archive: zipfile.ZipFile, source: str) -> None:
    """Refuse an archive whose entries are not Keras's three, or that could inflate past their limits,
    from the headers alone: nothing is decompressed."""
    seen: set[str] = set()
    for info in archive.infolist():
        name = info.filename
        if name not in ENTRY_LIMITS or name in seen:
            what = "a second" if name in seen else "an unexpected entry"
            raise _refuse(source, f"{what} {name!r} in the archive; a dfscan model holds only "
                          f"{', '.join(ENTRY_LIMITS)}", ArtifactProblem.NOT_KERAS)
        seen.add(name)
        if info.flag_bits & 0x1:
            raise _refuse(source, f"{name} is encrypted", ArtifactProblem.NOT_KERAS)
        if info.compress_type not in ALLOWED_COMPRESSION:
            raise _refuse(source, f"{name} uses zip compression method {info.compress_type}; only "
                          f"{' and '.join(ALLOWED_COMPRESSION.values())} entries are read",
                          ArtifactProblem.UNSUPPORTED_COMPRESSION)
        limit = ENTRY_LIMITS[name]
        if info.file_size > limit:
            raise _refuse(source, f"{name} inflates to {info.file_size} bytes, over the limit of {limit}",
                          ArtifactProblem.OVERSIZED_ENTRY)
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise _refuse(source, f"{name} is stored uncompressed but declares {info.file_size} bytes in "
                          f"{info.compress_size}", ArtifactProblem.OVERSIZED_ENTRY)
        if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise _refuse(source, f"{name} declares {info.file_size} bytes from {info.compress_size} stored, "
                          f"more than {MAX_COMPRESSION_RATIO}:1 (a decompression bomb)",
                          ArtifactProblem.OVERSIZED_ENTRY)
    missing = [name for name in (CONFIG_ENTRY, WEIGHTS_ENTRY) if name not in seen]
    if missing:
        raise _refuse(source, f"not a Keras 3 archive (no {', '.join(missing)})", ArtifactProblem.NOT_KERAS)


def read_entry(archive: zipfile.ZipFile, name: str, source: str) -> bytes:
    """An entry's bytes, never more than its limit, even if the headers lied: read in small pieces,
    so what is held at once is what was read plus one piece."""
    limit = ENTRY_LIMITS[name]
    pieces: list[bytes] = []
    held = 0
    with archive.open(name) as entry:
        while piece := entry.read(_READ_PIECE):
            held += len(piece)
            if held > limit:
                raise _refuse(source, f"{name} inflates past the limit of {limit} bytes",
                              ArtifactProblem.OVERSIZED_ENTRY)
            pieces.append(piece)
    return b"".join(pieces)


def parse_json(data: bytes, what: str):
    """JSON from UTF-8 bytes; anything else is ``ArtifactError`` naming ``what``: NOT_KERAS for bad
    bytes or bad JSON, UNSAFE_CONFIG for nesting deeper than Python's parser recurses."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ArtifactError(ArtifactProblem.NOT_KERAS, f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") \
            from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(ArtifactProblem.NOT_KERAS, f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ArtifactError(ArtifactProblem.UNSAFE_CONFIG, f"{what} is nested too deeply to parse") from None


def references(config, source: str = CONFIG_ENTRY) -> Iterator[tuple[str, dict | str]]:
    """``(where, reference)`` for every object reference in a config: each dict naming a ``class_name``
    or ``module``, and each activation given by name (what the allowlist was derived from). ``where``
    names the nearest layer and the path to the reference. Refuses nesting deeper than
    ``MAX_CONFIG_DEPTH`` with ``ArtifactError`` naming ``source``."""
    stack: list[tuple[object, str, int, str | None]] = [(config, "", 0, None)]  # node, path, depth, layer
    while stack:
        node, path, depth, layer = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise _refuse(source, f"nested deeper than {MAX_CONFIG_DEPTH} levels at {path}")
        if isinstance(node, dict):
            inner = node.get("config")
            if isinstance(inner, dict) and isinstance(inner.get("name"), str) and "class_name" in node:
                layer = inner["name"]
            if "class_name" in node or "module" in node:
                yield _place(path, layer), node
            children = []
            for key, value in node.items():
                here = f"{path}.{key}" if path else str(key)
                if key in ACTIVATION_KEYS and isinstance(value, str):
                    yield _place(here, layer), value
                children.append((value, here, depth + 1, layer))
        elif isinstance(node, list):
            children = [(value, f"{path}[{i}]", depth + 1, layer) for i, value in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))  # popped in the file's order: the first offence is reported


def _place(path: str, layer: str | None) -> str:
    return f"{layer!r} at {path or 'the top'}" if layer else path or "the top"


def _why_refused(reference: dict | str) -> str | None:
    """Why one reference is outside the allowlist, or None when it is inside it."""
    if isinstance(reference, str):
        return None if reference in ALLOWED_ACTIVATIONS else f"names activation {reference!r}, not one of " \
                                                             f"{', '.join(sorted(ALLOWED_ACTIVATIONS))}"
    module, class_name = reference.get("module"), reference.get("class_name")
    registered = reference.get("registered_name")
    if class_name == "__lambda__":
        return "holds a __lambda__ (Python bytecode)"
    if class_name == KERAS_TENSOR and module is None:
        return None
    if not isinstance(module, str) or not isinstance(class_name, str):
        return f"names {class_name!r} without a Keras module"
    if class_name == "function":
        name = reference.get("config")
        if module in ALLOWED_FUNCTION_MODULES and name in ALLOWED_ACTIVATIONS and registered in (None, name):
            return None
        return f"names the function {module}.{name}"
    if class_name not in ALLOWED_CLASSES.get(module, ()):
        return f"names {module}.{class_name}, not one of the Keras classes dfscan's models are built from"
    if registered not in (None, class_name):  # a registered custom object under a built-in's name
        return f"names {module}.{class_name} registered as {registered!r}"
    return None


def check_config(config, source: str = CONFIG_ENTRY) -> None:
    """Refuse a parsed config that names anything outside the allowlist (or a Lambda layer), or nests
    too deeply: ``ArtifactError`` naming the first offending entry and where it is."""
    if not isinstance(config, dict):
        raise ArtifactError(ArtifactProblem.NOT_KERAS, f"{source} is not a JSON object")
    for where, reference in references(config, source):
        reason = _why_refused(reference)
        if reason is None:
            continue
        problem = ArtifactProblem.UNSAFE_CONFIG
        if isinstance(reference, dict) and reference.get("class_name") == "Lambda":
            problem = ArtifactProblem.LAMBDA_LAYER
            reason = "holds a Lambda layer (arbitrary Python code); models must use built-in layers only"
        raise _refuse(source, f"{where} {reason}", problem)


def read_model_config(path: str | Path) -> dict:
    """The checked ``config.json`` of the ``.keras`` archive at ``path``; raises ``ArtifactError``."""
    name = Path(path).name
    try:
        with zipfile.ZipFile(path) as archive:
            check_entries(archive, name)
            data = read_entry(archive, CONFIG_ENTRY, name)
    except ArtifactError:
        raise
    # What zipfile raises for damaged archives: bad headers or checksums, truncation, a method it
    # lacks a library for, an encrypted entry.
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise ArtifactError(ArtifactProblem.NOT_KERAS, f"{name}: not a readable Keras 3 archive "
                            f"({type(exc).__name__}: {exc})") from None
    config = parse_json(data, f"{name}: {CONFIG_ENTRY}")
    check_config(config, f"{name}: {CONFIG_ENTRY}")
    return config


# --- the model's input -----------------------------------------------------------------------------
def input_shape(config) -> list | None:
    """The ``batch_shape`` of a functional config's one input (the top-level InputLayer its
    ``input_layers`` names), or None when it names no single input layer."""
    inner = config.get("config") if isinstance(config, dict) else None
    if not isinstance(inner, dict):
        return None
    inputs = inner.get("input_layers")
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], str):  # Keras writes one input flat
        inputs = [inputs]
    if not (isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], list) and inputs[0]):
        return None
    for layer in inner.get("layers") or ():
        if (isinstance(layer, dict) and layer.get("class_name") == "InputLayer"
                and isinstance(layer.get("config"), dict)
                and inputs[0][0] in (layer.get("name"), layer["config"].get("name"))):
            return layer["config"].get("batch_shape", layer["config"].get("batch_input_shape"))
    return None


def check_input(config, frames: int, size: int, source: str = CONFIG_ENTRY) -> None:
    """Refuse a config whose input is not ``(batch, frames, size, size, 3)`` (the card's F and S) or is
    over the limits: ``ArtifactError`` naming the numbers, OVERSIZED_INPUT or INPUT_MISMATCH."""
    shape = input_shape(config)
    dims = shape[1:] if isinstance(shape, list) and len(shape) == 5 else None
    if dims is None or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise _refuse(source, f"its input {json.dumps(shape)[:80]} is not (batch, frames, size, size, 3)",
                      ArtifactProblem.INPUT_MISMATCH)
    f, height, width, channels = dims
    if f > MAX_FRAMES or height > MAX_SIZE or width > MAX_SIZE:
        raise _refuse(source, f"its input asks for {f} frames of {height}x{width} pixels; dfscan reads at most "
                      f"{MAX_FRAMES} frames of at most {MAX_SIZE}x{MAX_SIZE} pixels", ArtifactProblem.OVERSIZED_INPUT)
    if dims != [frames, size, size, 3]:
        raise _refuse(source, f"its input takes {f} frames of {height}x{width}x{channels} but the card says "
                      f"{frames} frames of {size}x{size}x3", ArtifactProblem.INPUT_MISMATCH)


def batch_bytes(batch_size: int, frames: int, size: int) -> int:
    """What one batch of clips holds: ``(B, F, S, S, 3)`` uint8."""
    return batch_size * frames * size * size * 3


def check_batch(batch_size: int, frames: int, size: int, source: str) -> None:
    """Refuse a batch of ``batch_size`` clips of F frames of SxS pixels larger than ``MAX_BATCH_BYTES``,
    naming the largest batch size that fits: ``ArtifactError`` (OVERSIZED_INPUT)."""
    held = batch_bytes(batch_size, frames, size)
    if held > MAX_BATCH_BYTES:
        fits = MAX_BATCH_BYTES // batch_bytes(1, frames, size)
        raise _refuse(source, f"a batch of {batch_size} clips of {frames} frames of {size}x{size} pixels holds "
                      f"{held} bytes, over the limit of {MAX_BATCH_BYTES} bytes a batch; use --batch-size {fits} "
                      f"or less", ArtifactProblem.OVERSIZED_INPUT)
