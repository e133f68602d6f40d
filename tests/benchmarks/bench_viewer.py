"""Time the viewer: open -> image, -> probabilities, -> heat map, as the reader sees them.

    python tests/benchmarks/bench_viewer.py IMAGE --model CARD.json [--device cpu] [--repeat 5]

Drives the real main window (offscreen when there is no display) through ``open_path``
and reads the times it records when each result is put on screen. The first open
includes loading the model; the following ones show the steady state.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tests/benchmarks/bench_viewer.py")
    parser.add_argument("image", type=Path)
    parser.add_argument("--model", required=True, help="model name or card path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=5, help="warm opens after the first")
    args = parser.parse_args(argv)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import tempfile

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(["xraydesk-benchmark"])
    from xraydesk.classifier.cache import ClassifierCache
    from xraydesk.gui.app import apply_theme, quiet_offscreen_notices
    from xraydesk.gui.main_window import MainWindow
    from xraydesk.gui.settings import AppSettings

    apply_theme(app)
    quiet_offscreen_notices()
    scratch = tempfile.TemporaryDirectory(prefix="xraydesk-benchmark-")
    window = MainWindow(
        model=args.model,
        device=args.device,
        settings=AppSettings(Path(scratch.name) / "settings.ini"),
        cache=ClassifierCache(),  # cold: the first open pays for loading the model
    )
    window.resize(1440, 900)
    window.show()
    runs: list[dict[str, float]] = []
    failed: list[str] = []
    for _ in range(args.repeat + 1):
        loop = QEventLoop()
        window.overlay_shown.connect(loop.quit)
        window.error_shown.connect(loop.quit)
        window.error_shown.connect(failed.append)
        QTimer.singleShot(600_000, loop.quit)
        window.open_path(args.image)
        loop.exec()
        window.overlay_shown.disconnect(loop.quit)
        window.error_shown.disconnect(loop.quit)
        window.error_shown.disconnect(failed.append)
        if failed or "overlay" not in window.timings:
            print(f"benchmark: {failed[0] if failed else 'timed out'}", file=sys.stderr)
            return 1
        runs.append(dict(window.timings))
    prediction = window.current_prediction
    xray = window.current_xray
    assert prediction is not None and xray is not None
    print(f"image   {args.image} ({xray.shape[1]} x {xray.shape[0]})")
    classifier = window.pipeline.cache.get(window.active_model_path, args.device)
    size = classifier.card.preprocessing.size
    print(f"model   {prediction.model}, input {size} px, {prediction.device}")
    first = runs[0]
    print(
        "first open (model load included): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in first.items())
    )
    for key in ("image", "probabilities", "overlay"):
        values = [run[key] * 1000 for run in runs[1:]]
        if values:
            print(
                f"warm, {key:<13} median {statistics.median(values):6.0f} ms "
                f"(min {min(values):.0f}, max {max(values):.0f}, n={len(values)})"
            )
    window.close()
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
