"""Hostile model files, built at test time from a genuine one: the attacker rewrites ``model.keras``
and writes a card whose sha256 matches it, so only what is inside the archive can refuse it.

No deep-learning library is imported here: the scanner tests use this in the Ray driver's process.
"""

from __future__ import annotations

import copy
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from dfscan.kernels.artifact import sha256_file

from dfscan.kernels.card import CARD_FILE, MODEL_FILE

CONFIG_ENTRY = "config.json"


def write_model(source: Path, out_dir: Path, *, config: dict | None = None, config_bytes: bytes | None = None,
                compression: int = zipfile.ZIP_STORED, extra: dict[str, bytes] | None = None,
                card: dict | None = None) -> Path:
    """``out_dir/model.keras``: the entries of the archive ``source`` with config.json replaced by
    ``config`` (as JSON) or ``config_bytes`` (as they are) and written with ``compression``, plus
    ``extra`` entries; and beside it ``source``'s card, updated with ``card``, with the new file's sha256."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / MODEL_FILE
    if config is not None:
        config_bytes = json.dumps(config).encode()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as archive:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == CONFIG_ENTRY:
                archive.writestr(CONFIG_ENTRY, data if config_bytes is None else config_bytes,
                                 compress_type=compression)
            else:
                archive.writestr(info, data)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    write_card(source, target, card)
    return target


def write_card(source: Path, model: Path, changes: dict | None = None) -> None:
    """``source``'s card (updated with ``changes``) beside ``model``, recording ``model``'s sha256."""
    card = json.loads((source.parent / CARD_FILE).read_text())
    (model.parent / CARD_FILE).write_text(json.dumps({**card, **(changes or {}), "sha256": sha256_file(model)}))


def read_config(model: Path) -> dict:
    with zipfile.ZipFile(model) as archive:
        return json.loads(archive.read(CONFIG_ENTRY))


def _layer(config: dict, name: str) -> dict:
    """The serialized layer called ``name`` among a functional model's layers."""
    return next(layer for layer in config["config"]["layers"] if layer["config"].get("name") == name)


def function_reference(module: str, name: str) -> dict:
    """How Keras serializes a reference to a plain function (serialization_lib)."""
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def with_activation(value) -> Callable[[dict], dict]:
    def poison(config: dict) -> dict:
        config = copy.deepcopy(config)
        _layer(config, "probs")["config"]["activation"] = value
        return config
    return poison


def _with_layer(module: str, class_name: str, layer_config: dict) -> Callable[[dict], dict]:
    def poison(config: dict) -> dict:
        config = copy.deepcopy(config)
        layer = _layer(config, "probs")
        layer.update(module=module, class_name=class_name)
        layer["config"] = {"name": "probs", **layer_config}
        return config
    return poison


# A code object as Keras writes one for a Python lambda (base64 of marshalled bytecode); the bytes
# never run here.
_BYTECODE = {"class_name": "__lambda__", "config": {"value": "4wEAAAAAAAAAAAAAAAEAAAACAAAA", "defaults": None,
                                                     "closure": None}}

# The hostile configs, each with the words its refusal must name (where is the layer "probs").
HOSTILE_CONFIGS: dict[str, tuple[Callable[[dict], dict], str]] = {
    "os.system": (with_activation(function_reference("os", "system")), "function os.system"),
    "builtins.eval": (with_activation(function_reference("builtins", "eval")), "function builtins.eval"),
    "keras.utils.get_file": (with_activation(function_reference("keras.utils", "get_file")),
                             "function keras.utils.get_file"),
    "TFSMLayer": (_with_layer("keras.layers", "TFSMLayer", {"filepath": "/tmp/saved", "call_endpoint": "serve"}),
                  "keras.layers.TFSMLayer"),
    "bytecode activation": (with_activation(_BYTECODE), "__lambda__ (Python bytecode)"),
    "Lambda layer": (_with_layer("keras.layers", "Lambda", {"function": _BYTECODE}), "Lambda layer"),
    "activation by name": (with_activation("os.system"), "activation 'os.system'"),
    "unknown module": (_with_layer("evil.layers", "Dense", {}), "evil.layers.Dense"),
    "registered custom object": (with_activation({"module": "keras.layers", "class_name": "Dense", "config": {},
                                                   "registered_name": "evil>Dense"}), "registered as 'evil>Dense'"),
}


def with_input(frames: int, size: int) -> Callable[[dict], dict]:
    """The model's input layer asking for (batch, frames, size, size, 3): a few bytes of JSON, however
    large the clips it asks for (nothing is allocated here)."""
    def poison(config: dict) -> dict:
        config = copy.deepcopy(config)
        name = config["config"]["input_layers"][0]
        layer = _layer(config, name if isinstance(name, str) else name[0])
        layer["config"]["batch_shape"] = [None, frames, size, size, 3]
        return config
    return poison


def nested(depth: int) -> bytes:
    """A config object holding lists nested ``depth`` deep."""
    return b'{"config": ' + b"[" * depth + b"]" * depth + b"}"
