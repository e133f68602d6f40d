"""Previous and next image in the folder of the one on screen (no Qt here)."""

from __future__ import annotations

from pathlib import Path

from xraydesk.imaging.discover import iter_images


class FolderImages:
    """The images of one folder sorted by name, listed again only when the folder changes."""

    def __init__(self) -> None:
        self._listing: tuple[Path, int, list[Path]] | None = None

    def images(self, folder: Path) -> list[Path]:
        try:
            stamp = folder.stat().st_mtime_ns
        except OSError:
            return []
        cached = self._listing
        if cached is None or cached[0] != folder or cached[1] != stamp:
            images = [p for p in iter_images([folder]) if p.is_file()]
            self._listing = (folder, stamp, images)
        return self._listing[2] if self._listing else []

    def neighbour(self, current: Path, step: int) -> Path | None:
        """The image ``step`` places from ``current`` (None past either end); when
        ``current`` has gone, counting starts from where it would sort."""
        images = self.images(current.parent)
        if current in images:
            index = images.index(current) + step
        else:
            index = sum(1 for p in images if p.name < current.name) + (step if step < 0 else 0)
        return images[index] if 0 <= index < len(images) else None
