"""Exporting a model to a graph file, once, into a cache keyed by its weights.

Two forms of the same graph, each made when a runtime first needs it: ONNX (``.onnx``,
``runtime.onnx_graph``, numpy and onnx alone) for ONNX Runtime, and OpenVINO IR (``.xml``
and ``.bin``, ``runtime.openvino_graph``, OpenVINO's own operations: no onnx import and
no ONNX written and parsed again) for OpenVINO. Both are built by one walk through the
weights (``runtime.resnet_walk``) from the model's safetensors file, after its sha256
was checked against the card (``model.weights.verified_weights``): no torch, so the light
build exports too, and what runs is what the file holds, never a network changed in
memory. The file name holds that sha256, the export version and the input shape: weights
that change (a retrained or replaced model) get a new name, so a graph of old weights is
never used for new ones, and a change to how graphs are made (``EXPORT_VERSION``) makes
every old one unused. The files are written atomically (``files.write_atomic``,
``openvino_graph.save_ir``): a process killed mid-export leaves no half graph that a
later start would load.

Nothing is ever shipped exported: the cache is built on the user's machine from the
weights that ship.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from xraydesk import paths
from xraydesk.environment import RUNTIME_CACHE, from_environ
from xraydesk.files import write_atomic
from xraydesk.model.card import ModelCard
from xraydesk.runtime.backend import RuntimeUnavailable

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # raise when the graph's form changes: every cached graph is then unused
OPSET = 17
PRUNE_AFTER_S = 3600.0  # an unused graph is deleted at the next export after this
CACHE_ENV = RUNTIME_CACHE  # replaces the cache folder (tests share one per session)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# the graph's forms and their files' suffixes: ONNX (ONNX Runtime), OpenVINO IR (OpenVINO)
SUFFIXES = {"onnx": ".onnx", "ir": ".xml"}
# what prune_cache looks at (".refused": an int8 graph refused here, ``int8_graph``)
_GRAPH_FILES = (".onnx", ".xml", ".bin", ".checked", ".refused")
INT8_TAG = "-int8-"  # an int8 graph's name: its graph key, this, its ranges' digest


@dataclass(frozen=True)
class ExportedGraph:
    path: Path
    created: bool  # exported by this call (False: found in the cache)


def runtime_cache_dir() -> Path:
    """Where exported graphs live: ``<user data>/cache/runtime`` unless ``CACHE_ENV`` says."""
    override = from_environ().runtime_cache
    path = override if override is not None else paths.cache_dir() / "runtime"
    path.mkdir(parents=True, exist_ok=True)
    return path


def graph_key(weights_sha256: str, channels: int, size: int) -> str:
    """The cache name of a graph: weights, export version and input shape."""
    if not _SHA256.match(weights_sha256 or ""):
        raise RuntimeUnavailable(
            f"cannot export a network without the sha256 of its weights (got {weights_sha256!r})"
        )
    return f"{weights_sha256}-x{EXPORT_VERSION}-c{channels}s{size}"


def graph_path(weights_sha256: str, channels: int, size: int, suffix: str = ".onnx") -> Path:
    return runtime_cache_dir() / f"{graph_key(weights_sha256, channels, size)}{suffix}"


def checked_marker(graph: Path) -> Path:
    """The file whose presence says ``graph`` passed its check at first use
    (``select.build_backend``): one per form, each file being checked on its own."""
    return graph.with_name(f"{graph.name}.checked")


def exported_graph(card: ModelCard, form: str = "onnx") -> ExportedGraph:
    """The card's graph in ``form`` ("onnx" or "ir", ``SUFFIXES``) from the cache, built
    from its weights file first if it is not there. The batch dimension is dynamic.

    The weights file is checked against the card's sha256 either way (40 ms): a model
    whose weights are missing or damaged does not load, even where its graph is cached,
    just as it does not load in torch. (Once: an export checks the file as it reads it.)"""
    from xraydesk.model.weights import verified_weights

    prep = card.preprocessing
    if form not in SUFFIXES:
        raise RuntimeUnavailable(f"no graph form {form!r}: choose one of {sorted(SUFFIXES)}")
    path = graph_path(card.weights_sha256, prep.channels, prep.size, SUFFIXES[form])
    if path.is_file():
        verified_weights(card)
        return ExportedGraph(path, created=False)
    if form == "ir":
        write_ir(card, path)
    else:
        write_atomic(path, lambda out: write_onnx(card, out))
    log.info("exported %s", path)
    prune_cache(keep={path.stem})
    return ExportedGraph(path, created=True)


def prune_cache(keep: set[str] | None = None) -> list[Path]:
    """Delete the graphs (about 94 MB a form) that no installed model can use any more: a
    model retrained, replaced or deleted, or an older ``EXPORT_VERSION``. ``keep``: keys
    (``graph_key``) to keep besides those of the library's models. A graph younger than
    ``PRUNE_AFTER_S`` stays: another process may have just exported it for a model read
    from outside the library. Returns what went."""
    from xraydesk.model.library import list_models

    wanted = set(keep or ())
    for card in list_models():
        try:
            wanted.add(
                graph_key(card.weights_sha256, card.preprocessing.channels, card.preprocessing.size)
            )
        except RuntimeUnavailable:  # a card without a sha256 has no graph
            continue
    removed = []
    for file in runtime_cache_dir().iterdir():
        if file.suffix not in _GRAPH_FILES or _key_of(file.name) in wanted:
            continue
        try:
            if time.time() - file.stat().st_mtime < PRUNE_AFTER_S:
                continue
            file.unlink()
        except OSError:  # gone meanwhile, or not ours to delete: nothing to do
            continue
        removed.append(file)
    removed += _prune_derived(graphs_went=bool(removed))
    if removed:
        log.info("removed %d graph file(s) of models no longer installed", len(removed))
    return removed


def _key_of(name: str) -> str:
    """The graph key a cached file belongs to (an int8 graph's too)."""
    return name.split(".")[0].split(INT8_TAG)[0]


def _prune_derived(graphs_went: bool) -> list[Path]:
    """What was made from graphs that are gone or were written again, whatever its age:
    the saved parts (``mixed.PARTS_DIR``) whose folder names no graph file of the cache
    as it is now (``mixed.parts_folder``: its name, size and time), with the compiled
    parts inside; and, when anything went, OpenVINO's compiled cache of whole graphs
    (``openvino_backend.COMPILED_DIR``: blobs named by hash, so it is emptied whole and
    filled again at the next compile).

    Why no age: the same weights exported again (after a failed check, or a graph someone
    deleted) get a new parts folder at first use, and nothing finds the old one (about
    90 MB) again. A process running from old parts is not disturbed: OpenVINO reads them
    only when it compiles, and one whose parts vanish while it saves them runs them from
    memory (``mixed.split_parts``). What cannot be deleted (a file open on Windows) is
    tried again at the next export."""
    from xraydesk.runtime.mixed import PARTS_DIR, parts_folder
    from xraydesk.runtime.openvino_backend import COMPILED_DIR

    root = runtime_cache_dir()
    current = set()
    for graph in (g for suffix in SUFFIXES.values() for g in root.glob(f"*{suffix}")):
        try:
            current.add(parts_folder(graph).name)
        except OSError:  # gone meanwhile: its parts are stale too
            continue
    parts = root / PARTS_DIR
    gone = [
        folder
        for folder in (sorted(parts.iterdir()) if parts.is_dir() else [])
        if folder.is_dir() and folder.name not in current
    ]
    if (gone or graphs_went) and (root / COMPILED_DIR).is_dir():
        gone.append(root / COMPILED_DIR)
    for folder in gone:
        shutil.rmtree(folder, ignore_errors=True)
    return [folder for folder in gone if not folder.exists()]


def resnet50_state(card: ModelCard) -> dict:
    """The card's checked weights as stored (float16 stays float16: the walk folds them in
    float64), for the graph builders, which empty it as they go."""
    from xraydesk.model.weights import load_state, verified_weights

    if card.architecture != "resnet50":
        raise RuntimeUnavailable(f"no export for architecture {card.architecture!r}")
    return load_state(verified_weights(card), float32=False)


def write_ir(card: ModelCard, xml: Path) -> None:
    """Save the float32 OpenVINO model of the card's checked weights file as ``xml`` (and
    its ``.bin``). The model is dropped once saved: the compile reads the files."""
    from xraydesk.runtime.openvino_graph import resnet50_model, save_ir

    state = resnet50_state(card)
    prep = card.preprocessing
    try:
        model = resnet50_model(state, prep.channels, prep.size, consume=True)
    except ImportError as exc:
        raise RuntimeUnavailable("OpenVINO is not installed") from exc
    except ValueError as exc:
        raise RuntimeUnavailable(f"{card.weights_path}: cannot export ({exc})") from exc
    try:
        save_ir(model, xml)
    except (OSError, RuntimeError) as exc:
        raise RuntimeUnavailable(f"{xml}: cannot save the OpenVINO model ({exc})") from exc


def write_onnx(card: ModelCard, out: BinaryIO) -> None:
    """Write the float32 ONNX graph of the card's checked weights file to ``out``."""
    try:
        from xraydesk.runtime.onnx_graph import write_graph
    except ImportError as exc:  # onnx itself missing
        raise RuntimeUnavailable(
            "exporting a model for a faster CPU runtime needs the 'onnx' package"
        ) from exc
    state = resnet50_state(card)
    prep = card.preprocessing
    try:
        write_graph(state, prep.channels, prep.size, out, consume=True)
    except ValueError as exc:
        raise RuntimeUnavailable(f"{card.weights_path}: cannot export ({exc})") from exc
