"""Build the XRayDesk distribution: PyInstaller, then the frozen self-test, then the archive.

    python packaging/build.py [--cpu-only | --light] [--openvino | --no-openvino] [--clean]
                              [--no-archive]

1. checks that models/ holds a bundled model and that the installed package metadata
   (where the version comes from) matches pyproject.toml;
2. runs PyInstaller on packaging/xraydesk.spec (dist/XRayDesk/, plus dist/XRayDesk.app
   on macOS; with --light, the build without torch: dist/XRayDesk-light/ and
   dist/XRayDesk-light.app, so both targets can lie side by side); OpenVINO is in the
   full build unless --no-openvino, and in the light build only with --openvino;
3. runs ``XRayDesk self-test`` on what it built, from outside the checkout, and stops
   with an error when it fails: a build that cannot classify a DICOM is never archived;
4. packs the result: on Linux dist/XRayDesk-VERSION-linux-ARCH.tar.gz (XRayDesk/, the
   .desktop file, the icon and install.sh); on Windows the Inno Setup installer when
   ``iscc`` is available; on macOS a .dmg of XRayDesk.app (``-cpu`` or ``-light`` after
   the version for those builds, then ``-openvino`` for a light build with OpenVINO and
   ``-no-openvino`` for a full one without);
5. prints the folder and archive sizes and the largest parts of the bundle.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGING = Path(__file__).resolve().parent
ROOT = PACKAGING.parent
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
APP = "XRayDesk"
LIGHT_APP = "XRayDesk-light"  # the light build's folder in dist/ (its program is still XRayDesk)
SELF_TEST_TIMEOUT = 900  # seconds; a CPU-only machine loads each ResNet-50 in about a second


class BuildError(Exception):
    """A step failed; the message says which and why."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="an app that never uses a GPU: no CUDA library with a CPU build of torch, "
        "only those torch cannot import without with a CUDA build (packaging/README.md)",
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help="the build without torch (ONNX Runtime on the CPU; no full fine-tuning), in "
        "dist/XRayDesk-light/ (packaging/README.md)",
    )
    openvino = parser.add_mutually_exclusive_group()
    openvino.add_argument(
        "--openvino",
        action="store_true",
        help="add OpenVINO to the light build (its CPU plugin and ONNX frontend: about 98 MB; "
        "the full build has it unless --no-openvino)",
    )
    openvino.add_argument(
        "--no-openvino",
        action="store_true",
        help="leave OpenVINO out of the full build (which then keeps ONNX Runtime, if "
        "installed, as its exported CPU runtime)",
    )
    parser.add_argument("--clean", action="store_true", help="empty PyInstaller's cache first")
    parser.add_argument("--no-archive", action="store_true", help="stop after the self-test")
    args = parser.parse_args(argv)
    if args.cpu_only and args.light:
        parser.error("--cpu-only is for the torch build; the light build never uses a GPU")
    # None: the target's default (the full build has OpenVINO, the light one not)
    openvino = True if args.openvino else False if args.no_openvino else None
    with_openvino = includes_openvino(args.light, openvino)
    try:
        app_version = check_sources(light=args.light, openvino=with_openvino)
        started = time.perf_counter()
        run_pyinstaller(args.cpu_only, args.clean, light=args.light, openvino=with_openvino)
        build_seconds = time.perf_counter() - started
        print(f"build: PyInstaller took {build_seconds / 60:.1f} min", flush=True)
        run_self_test(self_test_program(light=args.light))
        archive = (
            None
            if args.no_archive
            else make_archive(app_version, args.cpu_only, light=args.light, openvino=with_openvino)
        )
        report_sizes(archive, app_folder(args.light))
    except BuildError as exc:
        print(f"build: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


def includes_openvino(light: bool = False, openvino: bool | None = None) -> bool:
    """Whether the build has OpenVINO: ``openvino`` when given, else the target's default
    (the full build has it, the light one does not)."""
    return (not light) if openvino is None else openvino


def check_sources(light: bool = False, openvino: bool | None = None) -> str:
    """The version the build will carry, after checking the inputs it cannot do without."""
    if not sorted((ROOT / "models").glob("*.json")):
        raise BuildError(
            f"no bundled model in {ROOT / 'models'}: the installer must ship one "
            "(NAME.json and NAME.safetensors, see training/)"
        )
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise BuildError('PyInstaller is not installed: pip install -e ".[package]"') from None
    try:
        installed = version("xraydesk")
    except PackageNotFoundError:
        raise BuildError(
            'xraydesk is not installed in this environment: pip install -e ".[package]"'
        ) from None
    # onnx writes the graphs both runtimes read; OpenVINO and onnx are base dependencies
    needed = {"onnx": "package,light", "onnxruntime": "package,light"} if light else {}
    if includes_openvino(light, openvino):
        needed |= {"onnx": needed.get("onnx", "package"), "openvino": "package"}
    for distribution, extras in needed.items():
        try:
            version(distribution)
        except PackageNotFoundError:
            raise BuildError(
                f'{distribution} is not installed here: pip install -e ".[{extras}]"'
                + ("" if light else " (or build without it: --no-openvino)")
            ) from None
    with open(ROOT / "pyproject.toml", "rb") as handle:
        declared = tomllib.load(handle)["project"]["version"]
    if installed != declared:
        raise BuildError(
            f"the installed metadata says {installed} but pyproject.toml says {declared}: "
            'reinstall (pip install -e ".[package]") so the app, the CLI and the archive '
            "agree on the version"
        )
    return installed


def run_pyinstaller(
    cpu_only: bool, clean: bool, light: bool = False, openvino: bool | None = None
) -> None:
    """``openvino``: None for the target's default (see ``includes_openvino``)."""
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(PACKAGING / "xraydesk.spec"),
        "--noconfirm",
        "--distpath",
        str(DIST),
        "--workpath",
        # its own cache, so switching between the two targets does not redo either analysis
        str(WORK.with_name(WORK.name + "-light") if light else WORK),
    ]
    if clean:
        command.append("--clean")
    spec_options = (["--cpu-only"] if cpu_only else []) + (["--light"] if light else [])
    with_openvino = includes_openvino(light, openvino)
    if with_openvino != includes_openvino(light):  # only what differs from the default
        spec_options.append("--openvino" if with_openvino else "--no-openvino")
    if spec_options:
        command += ["--", *spec_options]
    print("build: " + " ".join(command), flush=True)
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise BuildError("PyInstaller failed (see its output above)")


def app_folder(light: bool = False) -> Path:
    """Where PyInstaller writes the one-folder build of this target."""
    return DIST / (LIGHT_APP if light else APP)


def self_test_program(light: bool = False) -> Path:
    """The console program of the build (the windowed one has no stdout on Windows/macOS)."""
    if sys.platform == "win32":
        return app_folder(light) / "xraydesk-cli.exe"
    if sys.platform == "darwin":
        bundle = f"{LIGHT_APP if light else APP}.app"
        return DIST / bundle / "Contents" / "MacOS" / "xraydesk-cli"
    return app_folder(light) / APP


def run_self_test(program: Path) -> None:
    """Run the frozen self-test from an empty folder, with an empty user data folder, so
    nothing can come from the checkout or from this user's model library."""
    if not program.is_file():
        raise BuildError(f"{program} was not built")
    with tempfile.TemporaryDirectory(prefix="xraydesk-build-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["XRAYDESK_DATA_DIR"] = str(Path(tmp) / "data")
        print(f"build: {program} self-test", flush=True)
        try:
            result = subprocess.run(
                [str(program), "self-test"], cwd=tmp, env=env, timeout=SELF_TEST_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise BuildError(f"the self-test took more than {SELF_TEST_TIMEOUT} s") from None
    if result.returncode != 0:
        raise BuildError(f"the frozen self-test failed (exit status {result.returncode})")
    print("build: self-test passed", flush=True)


def make_archive(
    app_version: str, cpu_only: bool, light: bool = False, openvino: bool | None = None
) -> Path | None:
    """The archive or installer, named by what differs from the default build (``-cpu``,
    ``-light``; ``-openvino`` for a light build with it, ``-no-openvino`` for a full one
    without it)."""
    with_openvino = includes_openvino(light, openvino)
    if with_openvino == includes_openvino(light):
        openvino_suffix = ""
    else:
        openvino_suffix = "-openvino" if with_openvino else "-no-openvino"
    flavour = ("-light" if light else "-cpu" if cpu_only else "") + openvino_suffix
    machine = platform.machine().lower().replace("amd64", "x86_64")
    if sys.platform.startswith("linux"):
        target = DIST / f"{APP}-{app_version}{flavour}-linux-{machine}.tar.gz"
        return _linux_tarball(target, app_folder(light))
    if sys.platform == "win32":
        return _inno_setup(app_version, flavour, app_folder(light))
    if sys.platform == "darwin":
        bundle = DIST / f"{LIGHT_APP if light else APP}.app"
        return _mac_dmg(DIST / f"{APP}-{app_version}{flavour}-macos-{machine}.dmg", bundle)
    print(f"build: no archive format for {sys.platform}; the app is in {app_folder(light)}")
    return None


def _linux_tarball(target: Path, folder: Path | None = None) -> Path:
    """XRayDesk/ plus the desktop entry, the icon and install.sh at the top level (the
    light build's folder is packed as XRayDesk/ too: install.sh and the menu entry are
    the same for both targets; the archive's name tells them apart)."""
    print(f"build: writing {target}", flush=True)
    tmp = target.with_name(target.name + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(folder or DIST / APP, arcname=APP)
        for name in ("xraydesk.desktop", "xraydesk.png", "install.sh"):
            tar.add(PACKAGING / "linux" / name, arcname=name)
    tmp.replace(target)
    return target


def _inno_setup(app_version: str, flavour: str, folder: Path | None = None) -> Path | None:
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)"))
    if iscc is None and (default / "Inno Setup 6" / "ISCC.exe").is_file():
        iscc = str(default / "Inno Setup 6" / "ISCC.exe")
    if iscc is None:
        print("build: Inno Setup (iscc) not found: the app is in dist\\XRayDesk; see README")
        return None
    from PIL import Image

    icon = ROOT / "build" / "xraydesk.ico"  # Inno Setup wants .ico; the source is one PNG
    with Image.open(PACKAGING / "linux" / "xraydesk.png") as png:
        png.save(icon, sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    command = [
        iscc,
        f"/DAppVersion={app_version}",
        f"/DFlavour={flavour}",
        f"/DSetupIcon={icon}",
        f"/DSourceDir={folder or DIST / APP}",
        str(PACKAGING / "windows" / "xraydesk.iss"),
    ]
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise BuildError("Inno Setup failed (see its output above)")
    return DIST / f"{APP}-{app_version}{flavour}-windows-x64-setup.exe"


def _mac_dmg(target: Path, bundle: Path | None = None) -> Path:
    command = [
        "hdiutil",
        "create",
        "-volname",
        APP,
        "-srcfolder",
        str(bundle or DIST / f"{APP}.app"),
        "-ov",
        "-format",
        "UDZO",
        str(target),
    ]
    if subprocess.run(command).returncode != 0:
        raise BuildError("hdiutil could not create the disk image")
    return target


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (links not followed, not counted twice)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def report_sizes(archive: Path | None, folder: Path | None = None) -> None:
    folder = folder or DIST / APP
    print(f"build: {folder}: {tree_size(folder) / 2**20:,.0f} MiB")
    internal = folder / "_internal"
    if internal.is_dir():
        parts = sorted(
            (
                (tree_size(p) if p.is_dir() else p.stat().st_size, p.name)
                for p in internal.iterdir()
                if not p.is_symlink()  # links to libraries counted where they lie
            ),
            reverse=True,
        )
        print("build: largest parts: " + ", ".join(f"{n} {s / 2**20:,.0f}" for s, n in parts[:8]))
    if archive is not None and archive.is_file():
        print(f"build: {archive}: {archive.stat().st_size / 2**20:,.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
