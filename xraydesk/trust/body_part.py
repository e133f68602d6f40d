"""What a DICOM's Body Part Examined says: the one place that knows body-part names.

Two policies use it. The DICOM node stores and classifies only what is plainly a chest
(``is_chest``: an allow-list, since a PACS may route every radiograph of a day to it),
while a file opened or classified on purpose is only flagged when its header clearly
names another part (``other_part``: a deny-list, so an unusual or free-text value never
hides the answer on a real chest film; the input gate still looks at the pixels).
Values are compared after normalising case, spaces, hyphens and underscores ("Port
Chest", "C-SPINE", "lower_leg").
"""

from __future__ import annotations

# Plainly the chest (DICOM PS3.16 CID 4031 and common spellings); "" is a file without one.
CHEST_PARTS = frozenset({"", "CHEST", "THORAX", "LUNG", "LUNGS", "TORSO", "PORTCHEST"})

# Parts a chest film does not show. Not "TSPINE" (a thoracic spine film shows the chest),
# nor mixed values such as "CHESTABDOMEN".
OTHER_PARTS = frozenset((
    "HEAD", "SKULL", "BRAIN", "FACE", "JAW", "TMJ", "SINUS", "ORBIT", "NOSE", "EAR", "NECK",
    "CSPINE", "LSPINE", "SSPINE", "LUMBARSPINE", "CERVICALSPINE", "SACRUM", "COCCYX",
    "PELVIS", "HIP", "KNEE", "ANKLE", "FOOT", "TOE", "HEEL", "HAND", "FINGER", "THUMB",
    "WRIST", "FOREARM", "ELBOW", "ARM", "UPPERARM", "HUMERUS", "FEMUR", "THIGH", "LEG",
    "LOWERLEG", "TIBIA", "FIBULA", "EXTREMITY", "LOWERLIMB", "UPPERLIMB", "SHOULDER",
    "ABDOMEN", "BREAST",
))  # fmt: skip


def normalised(value: str | None) -> str:
    """``value`` upper-cased, without spaces, hyphens or underscores ("" for None)."""
    text = (value or "").upper().replace("-", " ").replace("_", " ")
    return "".join(text.split())


def is_chest(value: str | None) -> bool:
    """Whether Body Part Examined is plainly the chest, or absent."""
    return normalised(value) in CHEST_PARTS


def other_part(value: str | None) -> str | None:
    """The value as written (stripped, upper case) when it clearly names a part other
    than the chest; None for the chest, mixed, unknown or absent values."""
    return (value or "").strip().upper() if normalised(value) in OTHER_PARTS else None
