"""PyInstaller runtime hook of the light build (``--light``): XRayDesk without torch.

The light bundle has no torch, torchvision or grad-cam at all, so ``import torch`` raises
``ModuleNotFoundError`` and ``importlib.util.find_spec("torch")`` answers None, as in an
environment where torch was never installed: the app's own checks (xraydesk.optional)
see that and offer what works without it. Imports are left exactly as they are here.

What this hook adds is the last resort: when an import of torch's stack is not caught
anywhere (a code path that forgot to ask first), the user reads which build this is and
what to install instead of a bare traceback ending in "No module named 'torch'". The
traceback still follows, for the bug report.
"""

import sys
import threading

_TORCH_STACK = ("torch", "torchvision", "pytorch_grad_cam", "triton")
_MESSAGE = (
    "XRayDesk: this is the light build, without PyTorch ({name} is not part of it). "
    "Viewing, classifying, batches and quick fine-tuning work here; full fine-tuning and "
    "Grad-CAM need the full build of XRayDesk (the installer without '-light' in its "
    "name), or from source: pip install xraydesk (which brings torch)."
)


def _torch_missing(exc: BaseException | None) -> str | None:
    """The torch-stack module whose absence raised ``exc`` (or its cause), else None."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in _TORCH_STACK:
            return exc.name
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _say(name: str) -> None:
    if sys.stderr is not None:  # a windowed app on Windows/macOS has no stderr
        print(_MESSAGE.format(name=name), file=sys.stderr, flush=True)


_previous_hook = sys.excepthook
_previous_thread_hook = threading.excepthook


def _excepthook(kind, value, traceback):
    name = _torch_missing(value)
    if name is not None:
        _say(name)
    _previous_hook(kind, value, traceback)


def _thread_excepthook(args):
    name = _torch_missing(args.exc_value)
    if name is not None:
        _say(name)
    _previous_thread_hook(args)


sys.excepthook = _excepthook
threading.excepthook = _thread_excepthook
