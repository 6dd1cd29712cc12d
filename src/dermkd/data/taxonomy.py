"""The 9-class ISIC taxonomy of the DSC paper: one table, used everywhere.

Malignant flags follow PAPER-NOTES: AK (pre-malignant), BCC, MEL and SCC count as
malignant for the derived binary task. Folder names map onto classes case-, space-,
underscore- and hyphen-insensitively, by canonical name or short code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dermkd.errors import DermkdError


@dataclass(frozen=True)
class LesionClass:
    name: str  # canonical folder name in the ISIC 9-class set
    code: str  # short code used in tables
    malignant: bool


ISIC9: tuple[LesionClass, ...] = (
    LesionClass("actinic keratosis", "AK", True),
    LesionClass("basal cell carcinoma", "BCC", True),
    LesionClass("dermatofibroma", "DF", False),
    LesionClass("melanoma", "MEL", True),
    LesionClass("nevus", "NV", False),
    LesionClass("pigmented benign keratosis", "PBK", False),
    LesionClass("seborrheic keratosis", "SK", False),
    LesionClass("squamous cell carcinoma", "SCC", True),
    LesionClass("vascular lesion", "VASC", False),
)


def normalise(name: str) -> str:
    """'Basal_Cell  carcinoma' -> 'basal cell carcinoma'."""
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


_LOOKUP: dict[str, LesionClass] = {}
for _c in ISIC9:
    _LOOKUP[normalise(_c.name)] = _c
    _LOOKUP[normalise(_c.code)] = _c


def resolve(name: str) -> LesionClass | None:
    """The class a folder/label name denotes, or None if it is not one of ISIC9."""
    return _LOOKUP.get(normalise(name))


def resolve_classes(names: list[str], allow_new: bool = False) -> list[str]:
    """Map folder names to canonical class names (same order).

    Unknown names are an error listing the known classes, unless `allow_new`, in which
    case they become extra classes under their normalised name.
    """
    out: list[str] = []
    for raw in names:
        cls = resolve(raw)
        if cls is not None:
            out.append(cls.name)
        elif allow_new:
            out.append(normalise(raw))
        else:
            known = ", ".join(f"{c.name} ({c.code})" for c in ISIC9)
            raise DermkdError(
                f"unknown class folder {raw!r}; known classes: {known} (use --allow-new-classes to accept it)"
            )
    if len(set(out)) != len(out):
        dup = sorted({n for n in out if out.count(n) > 1})
        raise DermkdError(f"several folders map to the same class: {', '.join(dup)}")
    return out


def class_order(names: list[str]) -> list[str]:
    """Canonical label order: ISIC9 classes in table order, then extra classes sorted."""
    known = [c.name for c in ISIC9 if c.name in names]
    extra = sorted(n for n in names if resolve(n) is None)
    return known + extra


def code_of(name: str) -> str:
    cls = resolve(name)
    return cls.code if cls is not None else name
