"""The installer: ``xraydesk self-test`` from source, the archive layout, the menu entry,
and (opt-in, slow) the whole PyInstaller build with its frozen self-test."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT
from xraydesk import __version__, paths
from xraydesk.cli import main

PACKAGING = REPO_ROOT / "packaging"


@pytest.fixture
def bundled(monkeypatch, test_model_path: Path) -> Path:
    """The session's small test model stands in for the bundled models."""
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: test_model_path.parent)
    return test_model_path.parent


def _self_test(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["self-test", "--json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_self_test_from_source_passes(bundled, capsys):
    code, summary, err = _self_test(capsys, "--no-window", "--device", "cpu")
    assert code == 0, err
    assert summary["ok"] is True
    assert summary["xraydesk"] == __version__
    assert summary["frozen"] is False
    assert "failures" not in summary
    images = summary["images"]
    assert images["dicom_jpeg_baseline"]["transfer_syntax"] == "JPEG Baseline (Process 1)"
    assert images["dicom_uncompressed"]["transfer_syntax"] == "Explicit VR Little Endian"
    assert images["png"]["format"] == "PNG"
    assert "pylibjpeg" in summary["decoders"]["JPEG Baseline (Process 1)"]
    assert "pylibjpeg" in summary["decoders"]["RLE Lossless"]
    [model] = summary["models"]
    assert model["name"] == "test-3class"
    assert set(model["predictions"]) == set(images)
    for prediction in model["predictions"].values():
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    # the class activation map always; Grad-CAM too where torch and grad-cam are installed
    assert model["cam"]["shape"] == images["dicom_jpeg_baseline"]["shape"]
    if summary["grad_cam"]:
        assert model["gradcam"]["shape"] == images["dicom_jpeg_baseline"]["shape"]
    assert summary["window"].startswith("skipped")


def test_self_test_without_bundled_models_fails_with_the_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path / "models")
    code, summary, err = _self_test(capsys, "--no-window")
    assert code == 1
    assert summary["ok"] is False
    [failure] = summary["failures"]
    assert failure["step"] == "bundled models"
    assert f"no bundled model in {tmp_path / 'models'}" in failure["error"]
    assert "FAILED bundled models: no bundled model" in err
    assert summary["images"]["png"]["format"] == "PNG"  # the other checks still ran


def test_self_test_names_a_damaged_model(monkeypatch, tmp_path, test_model_path, capsys):
    """Damaged weights (one byte changed) under an intact card: the card's own integrity
    hash now covers its weights sha256 field, so the damage is in the weights file."""
    (tmp_path / test_model_path.name).write_bytes(test_model_path.read_bytes())
    weights = bytearray(test_model_path.with_suffix(".safetensors").read_bytes())
    weights[-1] ^= 0xFF
    (tmp_path / test_model_path.with_suffix(".safetensors").name).write_bytes(weights)
    monkeypatch.setattr(paths, "bundled_models_dir", lambda: tmp_path)
    code, summary, _err = _self_test(capsys, "--no-window", "--device", "cpu")
    assert code == 1
    [failure] = summary["failures"]
    assert failure["step"] == "model test-3class"
    assert "sha256" in failure["error"]


def test_self_test_opens_and_closes_the_main_window(test_model_path, tmp_path):
    """In a child process, as the frozen app runs it: Qt gets a fresh process and the
    platform choice (offscreen without a display) happens before Qt is imported."""
    # The app's own import must not be skipped (a broken GUI import is a failure); only a
    # machine without Qt at all, where no window can open, skips.
    pytest.importorskip("PySide6", reason="PySide6, a dependency of the app, is not installed")
    bootstrap = (
        "import sys; from pathlib import Path; from xraydesk import paths; "
        f"paths.bundled_models_dir = lambda: Path({str(test_model_path.parent)!r}); "
        "from xraydesk.cli import main; sys.exit(main(['self-test', '--json', '--device', 'cpu']))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)  # the self-test must choose offscreen by itself
    result = subprocess.run(
        [sys.executable, "-c", bootstrap],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)
    assert summary["window"]["platform"] == "offscreen"
    width, height = summary["window"]["screenshot"]
    assert width >= 1280 and height >= 800


# --- build.py, the archive and the menu entry (no PyInstaller run) ----------------------------


def _build_module():
    """packaging/build.py as a module (packaging/ is not a package, and must not shadow
    the PyPA 'packaging' library)."""
    spec = importlib.util.spec_from_file_location("xraydesk_build", PACKAGING / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_dist(tmp_path, monkeypatch):
    """build.py pointed at a dist/ holding a stand-in XRayDesk/ folder."""
    build = _build_module()
    app = tmp_path / "dist" / "XRayDesk"
    (app / "_internal").mkdir(parents=True)
    (app / "XRayDesk").write_text("#!/bin/sh\necho XRayDesk\n")
    (app / "XRayDesk").chmod(0o755)
    (app / "_internal" / "lib.so").write_bytes(b"\0" * 1000)
    monkeypatch.setattr(build, "DIST", tmp_path / "dist")
    return build


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .tar.gz is Linux's")
def test_light_archive_packs_its_own_folder_under_the_usual_name(fake_dist):
    """The light build lies in dist/XRayDesk-light/ beside the full one; its archive is
    named -light- and holds it as XRayDesk/, so install.sh and the menu entry are shared."""
    light_app = fake_dist.DIST / "XRayDesk-light"
    (light_app / "_internal").mkdir(parents=True)
    (light_app / "XRayDesk").write_text("#!/bin/sh\necho light\n")
    archive = fake_dist.make_archive(__version__, cpu_only=False, light=True)
    assert archive.name.startswith(f"XRayDesk-{__version__}-light-linux-")
    with tarfile.open(archive) as tar:
        program = tar.extractfile("XRayDesk/XRayDesk").read()
        assert "install.sh" in tar.getnames()
    assert program.endswith(b"echo light\n"), "the full build's folder was packed"
    openvino = fake_dist.make_archive(__version__, cpu_only=False, light=True, openvino=True)
    assert openvino.name.startswith(f"XRayDesk-{__version__}-light-openvino-linux-")
    assert fake_dist.self_test_program(light=True).parent == light_app


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .tar.gz is Linux's")
def test_linux_archive_is_named_by_the_package_version(fake_dist):
    archive = fake_dist.make_archive(__version__, cpu_only=False)
    assert archive.name.startswith(f"XRayDesk-{__version__}-linux-")
    assert archive.name.endswith(".tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        mode = tar.getmember("install.sh").mode
    assert {"XRayDesk/XRayDesk", "xraydesk.desktop", "xraydesk.png", "install.sh"} <= names
    assert mode & 0o111, "install.sh must stay executable"
    cpu = fake_dist.make_archive(__version__, cpu_only=True)
    assert cpu.name.startswith(f"XRayDesk-{__version__}-cpu-linux-")
    # OpenVINO is in the full build by default: only its absence is named
    assert fake_dist.make_archive(__version__, cpu_only=False, openvino=True) == archive
    without = fake_dist.make_archive(__version__, cpu_only=False, openvino=False)
    assert without.name.startswith(f"XRayDesk-{__version__}-no-openvino-linux-")
    cpu_without = fake_dist.make_archive(__version__, cpu_only=True, openvino=False)
    assert cpu_without.name.startswith(f"XRayDesk-{__version__}-cpu-no-openvino-linux-")


def test_build_refuses_to_start_without_a_bundled_model(tmp_path, monkeypatch):
    build = _build_module()
    (tmp_path / "models").mkdir()
    monkeypatch.setattr(build, "ROOT", tmp_path)
    with pytest.raises(build.BuildError, match="no bundled model"):
        build.check_sources()


def test_build_reads_the_version_from_the_package_metadata(monkeypatch):
    assert list((REPO_ROOT / "models").glob("*.json")), "models/ holds no bundled model"
    if importlib.util.find_spec("PyInstaller") is None:  # CI installs only the test extra
        monkeypatch.setitem(sys.modules, "PyInstaller", types.ModuleType("PyInstaller"))
    assert _build_module().check_sources() == __version__


def test_build_names_the_missing_pyinstaller(monkeypatch):
    build = _build_module()
    monkeypatch.setitem(sys.modules, "PyInstaller", None)  # import fails
    with pytest.raises(build.BuildError, match=r'pip install -e "\.\[package\]"'):
        build.check_sources()


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_install_sh_adds_a_menu_entry_for_the_unpacked_folder(fake_dist, tmp_path):
    archive = fake_dist.make_archive(__version__, cpu_only=False)
    unpacked = tmp_path / "opt dir"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="tar")
    share = tmp_path / "share"
    env = {**os.environ, "XDG_DATA_HOME": str(share), "HOME": str(tmp_path)}
    script = [str(unpacked / "install.sh"), "--user"]  # --user: never /usr/local, even as root
    subprocess.run(["sh", *script], check=True, env=env, capture_output=True)
    entry = (share / "applications" / "xraydesk.desktop").read_text()
    assert f'Exec="{unpacked}/XRayDesk/XRayDesk" %f' in entry
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / "xraydesk.png").is_file()
    validate = shutil.which("desktop-file-validate")
    if validate:
        check = subprocess.run([validate, str(share / "applications" / "xraydesk.desktop")])
        assert check.returncode == 0


# --- the light target (no torch): what the spec leaves out, without running PyInstaller ----------


def _spec_literal(name: str):
    """The literal assigned to ``name`` at the top level of packaging/xraydesk.spec (the
    spec itself only runs inside PyInstaller)."""
    tree = ast.parse((PACKAGING / "xraydesk.spec").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"xraydesk.spec assigns no {name}")


def test_light_spec_leaves_out_torch_and_its_stack():
    excludes = set(_spec_literal("LIGHT_EXCLUDES"))
    torch_stack = {"torch", "torchvision", "pytorch_grad_cam", "triton", "nvidia"}
    assert torch_stack <= excludes, torch_stack - excludes
    # grad-cam's own imports (OpenCV, matplotlib, scikit-learn, SciPy) go with it
    assert {"cv2", "matplotlib", "sklearn", "scipy", "sympy"} <= excludes
    # ...and the build stops if any of torch's stack still reaches the bundle
    assert torch_stack <= set(_spec_literal("LIGHT_FORBIDDEN"))


def test_light_spec_keeps_what_the_light_app_runs_on():
    """No exclude may cover a package of the light app (each name covers its submodules)."""
    excludes = _spec_literal("LIGHT_EXCLUDES")
    needed = [
        "numpy", "PIL", "pydicom", "pylibjpeg", "libjpeg", "openjpeg", "rle", "jpeg_ls",
        "safetensors", "platformdirs", "onnx", "onnxruntime", "PySide6", "xraydesk",
        "onnxruntime.quantization", "onnx.reference",  # the int8 quantizer imports both
    ]  # fmt: skip
    covered = [
        (module, name)
        for module in needed
        for name in excludes
        if module == name or module.startswith(name + ".")
    ]
    assert not covered, covered


def test_full_spec_leaves_out_only_onnx_runtime():
    """With OpenVINO in the full build, ONNX Runtime goes; nothing the full app runs on
    (OpenVINO itself, onnx, which writes the graphs OpenVINO reads, torch) may."""
    excludes = _spec_literal("FULL_EXCLUDES")
    assert "onnxruntime" in excludes
    needed = ["openvino", "onnx", "torch", "torchvision", "pytorch_grad_cam", "numpy", "xraydesk"]
    covered = [(m, n) for m in needed for n in excludes if m == n or m.startswith(n + ".")]
    assert not covered, covered
    # the exported runtimes' backends import them inside functions, so a missing one is
    # only "not installed" to the app (xraydesk.runtime.select falls back)
    source = (REPO_ROOT / "xraydesk" / "runtime" / "onnxruntime_backend.py").read_text()
    assert "\nimport onnxruntime" not in source and "\nfrom onnxruntime" not in source


def test_spec_collects_the_openvino_libraries_it_opens_by_name():
    """OPENVINO_LIBS must match the CPU plugin and the ONNX frontend of the installed
    OpenVINO (opened by file name: a pattern that matches nothing leaves an OpenVINO that
    cannot run), and none of the GPU or NPU plugins."""
    import fnmatch

    patterns = _spec_literal("OPENVINO_LIBS")
    spec = importlib.util.find_spec("openvino")
    if spec is None or spec.origin is None:
        pytest.skip("OpenVINO is not installed")
    libs = [p.name for p in Path(spec.origin).parent.rglob("*") if p.is_file()]
    kept = {name for name in libs for p in patterns if fnmatch.fnmatch(name, p)}
    for wanted in ("openvino_intel_cpu_plugin", "openvino_onnx_frontend", "tbb"):
        assert any(wanted in name for name in kept), (wanted, sorted(kept))
    for unwanted in ("intel_gpu_plugin", "intel_npu_plugin", "pytorch_frontend"):
        assert not any(unwanted in name for name in kept), (unwanted, sorted(kept))


def _spec_function(name: str, **values):
    """A function of packaging/xraydesk.spec with the spec's literal constants (and
    ``values`` for the rest), run without PyInstaller."""
    import fnmatch

    tree = ast.parse((PACKAGING / "xraydesk.spec").read_text(encoding="utf-8"))
    namespace = {"fnmatch": fnmatch, "Path": Path}
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            namespace.update({t.id: value for t in node.targets})
    namespace.update(values)
    [function] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    exec(compile(ast.Module([function], type_ignores=[]), "xraydesk.spec", "exec"), namespace)
    return namespace[name]


def test_spec_trims_only_what_the_app_never_loads():
    unused = _spec_function("_unused", TRIM_CUDA=False, IS_LINUX=True)
    trimmed = [
        "PySide6/Qt/translations/qt_de.qm",
        "PySide6/Qt/plugins/platforms/libqvnc.so",
        "PySide6/Qt/plugins/platforms/libqeglfs.so",
        "PySide6/Qt/plugins/platforms/libqminimal.so",
        "PySide6/Qt/plugins/egldeviceintegrations/libqeglfs-x11-integration.so",
        "PySide6/Qt/plugins/generic/libqevdevmouseplugin.so",
        "PySide6/Qt/plugins/imageformats/libqjpeg.so",
        "PySide6/Qt/plugins/imageformats/libqtiff.so",
        "PySide6/Qt/lib/libQt6Network.so.6",
        "PySide6/Qt/lib/libQt6EglFSDeviceIntegration.so.6",
        "matplotlib/mpl-data/fonts/ttf/STIXGeneral.ttf",
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "torch/bin/protoc",
        "torch/bin/protoc-3.21.12.0",
        "torch/include/ATen/ATen.h",
    ]
    kept = [
        "PySide6/Qt/plugins/platforms/libqxcb.so",
        "PySide6/Qt/plugins/platforms/libqwayland.so",
        "PySide6/Qt/plugins/platforms/libqoffscreen.so",  # the self-test's window
        "PySide6/Qt/plugins/imageformats/libqsvg.so",  # the toolbar icons
        "PySide6/Qt/plugins/iconengines/libqsvgicon.so",
        "PySide6/Qt/plugins/platformthemes/libqgtk3.so",
        "PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so",
        "PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so",
        "PySide6/Qt/lib/libQt6Core.so.6",
        "PySide6/Qt/lib/libQt6Gui.so.6",
        "PySide6/Qt/lib/libQt6OpenGL.so.6",
        "PySide6/Qt/lib/libQt6DBus.so.6",
        "PySide6/Qt/lib/libicudata.so.73",
        "matplotlib/mpl-data/fonts/ttf/DejaVuSans.ttf",
        "matplotlib/mpl-data/matplotlibrc",
        "torch/bin/torch_shm_manager",
        "torch/lib/libtorch_cpu.so",
        "xraydesk/resources/icons/app.svg",
    ]
    assert [d for d in trimmed if not unused(d)] == []
    assert [d for d in kept if unused(d)] == []
    # Windows and macOS keep their platform plugins and their Qt libraries
    other = _spec_function("_unused", TRIM_CUDA=False, IS_LINUX=False)
    assert not other("PySide6/plugins/platforms/qwindows.dll")
    assert not other("PySide6/Qt/plugins/platforms/libqcocoa.dylib")
    assert not other("PySide6/Qt6Network.dll")


def test_spec_trims_stay_true_to_the_app():
    """The trims' reasons, checked on the sources: no Qt translation is ever installed,
    Qt reads no image file but the SVG icons, and the app never imports the torch
    packages whose .py copies are left out (only their bytecode ships)."""
    sources = {p: p.read_text(encoding="utf-8") for p in (REPO_ROOT / "xraydesk").rglob("*.py")}
    assert not [p for p, text in sources.items() if "QTranslator" in text]
    assert not [p for p, text in sources.items() if "QImageReader" in text or "QMovie" in text]
    # the resources Qt draws (the stylesheet aside; dotfiles are not packed)
    pictures = {
        p.suffix
        for p in (REPO_ROOT / "resources").rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix != ".qss"
    }
    kept = _spec_literal("QT_KEPT_IMAGE_FORMATS")
    assert pictures and all(any(f in suffix for f in kept) for suffix in pictures), pictures
    source_free = _spec_literal("TORCH_SOURCE_FREE")
    imported = {
        (path.relative_to(REPO_ROOT).as_posix(), module)
        for path, text in sources.items()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for module in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
        )
    }
    uses = [
        (path, module)
        for path, module in imported
        for name in source_free
        if module == name or module.startswith(name + ".")
    ]
    assert not uses, uses


def _recording_pyinstaller(monkeypatch):
    """build.py, with the PyInstaller commands it runs recorded instead of run."""
    build = _build_module()
    commands: list[list[str]] = []
    monkeypatch.setattr(
        build.subprocess,
        "run",
        lambda cmd, **_: commands.append(cmd) or types.SimpleNamespace(returncode=0),
    )
    return build, commands


def test_build_passes_the_light_options_to_the_spec(monkeypatch):
    build, commands = _recording_pyinstaller(monkeypatch)
    build.run_pyinstaller(cpu_only=False, clean=False, light=True, openvino=True)
    build.run_pyinstaller(cpu_only=False, clean=False)
    light, full = commands
    assert light[light.index("--") :] == ["--", "--light", "--openvino"]
    assert light[light.index("--workpath") + 1] != full[full.index("--workpath") + 1]
    assert "--" not in full


def test_build_passes_the_openvino_choice_to_the_spec(monkeypatch):
    """The full build has OpenVINO unless --no-openvino; the light one only with
    --openvino. Only what differs from the target's default reaches the spec."""
    build, commands = _recording_pyinstaller(monkeypatch)
    cases = [
        (dict(), []),
        (dict(openvino=True), []),
        (dict(openvino=False), ["--no-openvino"]),
        (dict(cpu_only=True, openvino=False), ["--cpu-only", "--no-openvino"]),
        (dict(light=True), ["--light"]),
        (dict(light=True, openvino=False), ["--light"]),
        (dict(light=True, openvino=True), ["--light", "--openvino"]),
    ]
    for kwargs, _ in cases:
        build.run_pyinstaller(clean=False, **{"cpu_only": False, **kwargs})
    for (kwargs, expected), command in zip(cases, commands, strict=True):
        passed = command[command.index("--") + 1 :] if "--" in command else []
        assert passed == expected, kwargs
    assert build.includes_openvino() and not build.includes_openvino(light=True)


def test_build_checks_for_openvino_only_where_the_build_has_it(monkeypatch):
    build = _build_module()
    if importlib.util.find_spec("PyInstaller") is None:  # CI installs only the test extra
        monkeypatch.setitem(sys.modules, "PyInstaller", types.ModuleType("PyInstaller"))
    real_version = build.version

    def version(distribution):
        if distribution == "openvino":
            raise build.PackageNotFoundError(distribution)
        return real_version(distribution)

    monkeypatch.setattr(build, "version", version)
    with pytest.raises(build.BuildError, match=r"openvino is not installed.*--no-openvino"):
        build.check_sources()
    assert build.check_sources(openvino=False) == __version__


def test_build_refuses_options_that_do_not_go_together(capsys):
    with pytest.raises(SystemExit) as exited:
        _build_module().main(["--light", "--cpu-only"])
    assert exited.value.code == 2
    assert "light" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        _build_module().main(["--openvino", "--no-openvino"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_light_runtime_hook_names_the_full_build_for_an_uncaught_torch_import(tmp_path):
    """pyi_rth_light.py: an ``import torch`` nobody catches ends with a message that says
    which build this is and what to install; find_spec still answers None."""
    hook = PACKAGING / "hooks" / "pyi_rth_light.py"
    script = (
        "import runpy, sys, importlib.util\n"
        "sys.modules['torch'] = None\n"
        f"runpy.run_path({str(hook)!r})\n"
        "import xraydesk.optional as o\n"
        "assert not o.has_torch()\n"
        "import torch\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )
    assert done.returncode == 1
    assert "this is the light build, without PyTorch (torch is not part of it)" in done.stderr
    assert "full build" in done.stderr
    assert "ModuleNotFoundError" in done.stderr  # the traceback follows, for the bug report
