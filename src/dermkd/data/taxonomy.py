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


# --------------------------------------------------------------------------- other label schemes
# Label vocabularies of public data sets, mapped onto the 9 canonical class names. A
# value of None marks a label that is *known* but has no counterpart in the 9-class set:
# `map_label` raises for it, `try_map_label` returns None so readers can skip such images
# with a count. Keys are matched like folder names (case-, space-, '_'- and '-'-insensitive).

# HAM10000 / ISIC 2018 task 3 `dx` codes.
HAM10000_TO_ISIC9: dict[str, str | None] = {
    # actinic keratoses AND intraepithelial carcinoma (Bowen's disease, i.e. SCC in situ):
    # HAM10000 cannot separate them; the bulk are AKs, so the whole code counts as AK
    # (malignant either way for the binary task).
    "akiec": "actinic keratosis",
    "bcc": "basal cell carcinoma",
    # benign keratosis-like lesions: solar lentigo, seborrheic keratosis and lichen
    # planus-like keratosis. The 9-class set's broad "pigmented benign keratosis" class;
    # its separate "seborrheic keratosis" class cannot be recovered from HAM10000.
    "bkl": "pigmented benign keratosis",
    "df": "dermatofibroma",
    "mel": "melanoma",
    "nv": "nevus",
    # cherry angiomas, angiokeratomas, pyogenic granulomas, haemorrhage
    "vasc": "vascular lesion",
}

# ISIC 2019 ground-truth one-hot columns.
ISIC2019_TO_ISIC9: dict[str, str | None] = {
    "MEL": "melanoma",
    "NV": "nevus",
    "BCC": "basal cell carcinoma",
    "AK": "actinic keratosis",  # ISIC 2019 split HAM's akiec: SCC in situ went to SCC
    "BKL": "pigmented benign keratosis",  # same content as HAM 'bkl' (SK, solar lentigo, LPLK)
    "DF": "dermatofibroma",
    "VASC": "vascular lesion",
    "SCC": "squamous cell carcinoma",
    # "none of the others" (outlier class of the 2019 test set; all-zero in the training
    # ground truth): no class to map to -> not mappable, readers skip it with a count.
    "UNK": None,
}

# ISIC 2020 / legacy ISIC Archive `diagnosis` column (free-text vocabulary). The 2020
# challenge's binary `benign_malignant`/`target` columns use the "binary" scheme below.
ISIC2020_TO_ISIC9: dict[str, str | None] = {
    "nevus": "nevus",
    "melanoma": "melanoma",
    # the 9-class set keeps SK as its own class, so the specific diagnosis stays specific
    "seborrheic keratosis": "seborrheic keratosis",
    # lentigines and LPLK: the members of HAM's 'bkl' group other than SK -> PBK
    "lentigo NOS": "pigmented benign keratosis",
    "solar lentigo": "pigmented benign keratosis",
    "lichenoid keratosis": "pigmented benign keratosis",
    "pigmented benign keratosis": "pigmented benign keratosis",
    # the remaining canonical names as the legacy archive spells them
    "actinic keratosis": "actinic keratosis",
    "basal cell carcinoma": "basal cell carcinoma",
    "dermatofibroma": "dermatofibroma",
    "squamous cell carcinoma": "squamous cell carcinoma",
    "vascular lesion": "vascular lesion",
    "angioma": "vascular lesion",  # HAM 'vasc' includes (cherry) angiomas
    # not mappable: a non-keratotic pigmented macule (no 9-class counterpart); an
    # indeterminate melanocytic lesion (neither a plain nevus nor a melanoma); no diagnosis
    "cafe-au-lait macule": None,
    "atypical melanocytic proliferation": None,
    "unknown": None,
}

# Benign/malignant labels (ISIC 2020 `benign_malignant` and 0/1 `target`, ISIC Archive
# `diagnosis_1`). Maps onto "benign"/"malignant", NOT onto the 9 classes.
BINARY_LABELS: dict[str, str | None] = {
    "benign": "benign",
    "malignant": "malignant",
    "0": "benign",
    "1": "malignant",
    "indeterminate": None,  # ISIC Archive diagnosis_1: neither -> not mappable
}

LABEL_SCHEMES: dict[str, dict[str, str | None]] = {
    "ham10000": HAM10000_TO_ISIC9,
    "isic2019": ISIC2019_TO_ISIC9,
    "isic2020": ISIC2020_TO_ISIC9,
    "isic9": {**{c.name: c.name for c in ISIC9}, **{c.code: c.name for c in ISIC9}},
    "binary": BINARY_LABELS,
}
_SCHEME_LOOKUP: dict[str, dict[str, str | None]] = {
    scheme: {normalise(k): v for k, v in table.items()} for scheme, table in LABEL_SCHEMES.items()
}


def _scheme_table(scheme: str) -> dict[str, str | None]:
    try:
        return _SCHEME_LOOKUP[scheme]
    except KeyError:
        raise DermkdError(f"unknown label scheme {scheme!r}; known: {', '.join(LABEL_SCHEMES)}") from None


def try_map_label(label: str, scheme: str) -> str | None:
    """The canonical class of `label` in `scheme`; None for a known but unmappable label
    (e.g. ISIC 2019 'UNK'). An unknown label is a DermkdError listing the scheme's labels."""
    table = _scheme_table(scheme)
    key = normalise(str(label))
    if key not in table:
        raise DermkdError(f"unknown {scheme} label {label!r}; known: {', '.join(LABEL_SCHEMES[scheme])}")
    return table[key]


def map_label(label: str, scheme: str) -> str:
    """The canonical 9-class name of `label` in `scheme` ("ham10000", "isic2019",
    "isic2020", "isic9"; "binary" gives "benign"/"malignant"). Unknown and unmappable
    labels are DermkdErrors."""
    name = try_map_label(label, scheme)
    if name is None:
        raise DermkdError(f"{scheme} label {label!r} has no counterpart in the 9-class set (not mappable)")
    return name


def binary_label(name: str) -> str:
    """'malignant' or 'benign' for a class name or code (AK, BCC, MEL, SCC are malignant);
    'benign'/'malignant' themselves pass through."""
    key = normalise(name)
    if key in ("benign", "malignant"):
        return key
    cls = resolve(name)
    if cls is None:
        known = ", ".join(f"{c.name} ({c.code})" for c in ISIC9)
        raise DermkdError(f"no benign/malignant flag for class {name!r}; known classes: {known}")
    return "malignant" if cls.malignant else "benign"


def is_malignant(name: str) -> bool:
    """A class of the binary task ("benign"/"malignant") or of the 9-class taxonomy; a class
    outside both (--allow-new-classes) counts as benign."""
    if name in ("benign", "malignant"):
        return name == "malignant"
    cls = resolve(name)
    return cls is not None and cls.malignant
