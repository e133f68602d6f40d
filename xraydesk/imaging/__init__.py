"""Files to radiographs: PNG, JPEG, TIFF, BMP and DICOM, recognised by content."""

from xraydesk.errors import ImageLoadError
from xraydesk.imaging.loader import MAX_PIXELS, is_image_file, load_xray
from xraydesk.imaging.xray import ImageMetadata, PatientInfo, Window, XRay

__all__ = [
    "MAX_PIXELS",
    "ImageLoadError",
    "ImageMetadata",
    "PatientInfo",
    "Window",
    "XRay",
    "is_image_file",
    "load_xray",
]
