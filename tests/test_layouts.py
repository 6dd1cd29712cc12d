"""Other data-set layouts (HAM10000, ISIC 2019, generic CSV) and the label-scheme maps."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from helpers import write_image

from dermkd.data.layouts import (
    LAYOUTS,
    LayoutData,
    read_csv_layout,
    read_ham10000,
    read_isic2019,
)
from dermkd.data.taxonomy import (
    HAM10000_TO_ISIC9,
    ISIC9,
    ISIC2019_TO_ISIC9,
    ISIC2020_TO_ISIC9,
    LABEL_SCHEMES,
    binary_label,
    map_label,
    try_map_label,
)
from dermkd.errors import DermkdError

NAMES = {c.name for c in ISIC9}


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- label schemes
@pytest.mark.parametrize("scheme", ["ham10000", "isic2019", "isic2020", "isic9"])
def test_every_code_of_every_scheme_lands_on_a_canonical_class_or_is_unmappable(scheme):
    for label, target in LABEL_SCHEMES[scheme].items():
        if target is None:
            assert try_map_label(label, scheme) is None
            with pytest.raises(DermkdError, match="not mappable"):
                map_label(label, scheme)
        else:
            assert map_label(label, scheme) in NAMES
            assert map_label(label.upper(), scheme) == map_label(label.lower(), scheme)


def test_documented_choices():
    assert set(HAM10000_TO_ISIC9) == {"akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"}
    assert set(ISIC2019_TO_ISIC9) == {"MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"}
    assert map_label("bkl", "ham10000") == "pigmented benign keratosis"
    assert map_label("akiec", "ham10000") == "actinic keratosis"
    assert map_label("BKL", "isic2019") == "pigmented benign keratosis"
    assert map_label("SCC", "isic2019") == "squamous cell carcinoma"
    assert try_map_label("UNK", "isic2019") is None
    for value in ("nevus", "melanoma", "seborrheic keratosis", "lentigo NOS", "lichenoid keratosis",
                  "solar lentigo", "cafe-au-lait macule", "atypical melanocytic proliferation", "unknown"):
        assert value in ISIC2020_TO_ISIC9
    assert map_label("Seborrheic_Keratosis", "isic2020") == "seborrheic keratosis"
    assert map_label("solar lentigo", "isic2020") == "pigmented benign keratosis"
    assert map_label("Basal Cell Carcinoma", "isic9") == "basal cell carcinoma"
    assert map_label("PBK", "isic9") == "pigmented benign keratosis"
    assert map_label("1", "binary") == "malignant" and map_label("Benign", "binary") == "benign"


def test_unknown_label_lists_the_schemes_labels():
    with pytest.raises(DermkdError) as err:
        map_label("xyz", "ham10000")
    msg = str(err.value)
    assert "'xyz'" in msg and "\n" not in msg
    for code in HAM10000_TO_ISIC9:
        assert code in msg
    with pytest.raises(DermkdError, match="unknown label scheme 'ham'"):
        map_label("mel", "ham")


def test_binary_label_for_all_nine_classes():
    got = {c.code: binary_label(c.name) for c in ISIC9}
    assert got == {"AK": "malignant", "BCC": "malignant", "MEL": "malignant", "SCC": "malignant",
                   "DF": "benign", "NV": "benign", "PBK": "benign", "SK": "benign", "VASC": "benign"}
    assert binary_label("mel") == "malignant"
    assert binary_label("Malignant") == "malignant"
    with pytest.raises(DermkdError, match="'tattoo'"):
        binary_label("tattoo")


# --------------------------------------------------------------------------- HAM10000
def ham_fixture(tmp_path: Path, rows: list[str]) -> tuple[Path, Path]:
    images = tmp_path / "ham"
    write_image(images / "HAM10000_images_part_1" / "ISIC_0000001.jpg", 1)
    write_image(images / "HAM10000_images_part_1" / "ISIC_0000002.jpg", 2)
    write_image(images / "HAM10000_images_part_2" / "ISIC_0000003.jpg", 3)
    write_image(images / "ISIC_0000004.jpg", 4)
    meta = write_csv(tmp_path / "HAM10000_metadata.csv", "lesion_id,image_id,dx,dx_type,age,sex,localization", rows)
    return meta, images


HAM_ROWS = [
    "HAM_0000118,ISIC_0000001,bkl,histo,80.0,male,scalp",
    "HAM_0000118,ISIC_0000002,bkl,histo,80.0,male,scalp",
    "HAM_0002730,ISIC_0000003,mel,histo,75.0,female,back",
    "HAM_0001466,ISIC_0000004,akiec,consensus,60.0,male,face",
]


def test_ham10000_reads_part_folders_and_groups_by_lesion(tmp_path):
    meta, images = ham_fixture(tmp_path, HAM_ROWS)
    data = read_ham10000(meta, images)
    assert isinstance(data, LayoutData)
    samples, classes, groups = data
    assert [s.rel for s in samples] == ["HAM10000_images_part_1/ISIC_0000001.jpg",
                                        "HAM10000_images_part_1/ISIC_0000002.jpg",
                                        "HAM10000_images_part_2/ISIC_0000003.jpg", "ISIC_0000004.jpg"]
    assert [s.label for s in samples] == ["pigmented benign keratosis", "pigmented benign keratosis",
                                          "melanoma", "actinic keratosis"]
    assert all(s.path.is_absolute() and s.path.is_file() for s in samples)
    assert classes == ["actinic keratosis", "melanoma", "pigmented benign keratosis"]
    assert groups == ["HAM_0000118", "HAM_0000118", "HAM_0002730", "HAM_0001466"]
    assert groups[0] == groups[1] != groups[2]


def test_ham10000_unknown_dx_lists_codes(tmp_path):
    meta, images = ham_fixture(tmp_path, [*HAM_ROWS[:3], "HAM_0001466,ISIC_0000004,wart,histo,60.0,male,face"])
    with pytest.raises(DermkdError) as err:
        read_ham10000(meta, images)
    msg = str(err.value)
    assert "'wart'" in msg and "row 5" in msg and str(meta) in msg
    assert "akiec, bcc, bkl, df, mel, nv, vasc" in msg


def test_ham10000_missing_image_counts_and_names_one(tmp_path):
    meta, images = ham_fixture(tmp_path, [*HAM_ROWS, "HAM_0009999,ISIC_0009999,nv,histo,30.0,male,back"])
    with pytest.raises(DermkdError, match=r"1 of 5 images listed in .* are missing .*ISIC_0009999"):
        read_ham10000(meta, images)


def test_ham10000_missing_columns_and_empty(tmp_path):
    images = tmp_path / "ham"
    images.mkdir()
    bad = write_csv(tmp_path / "bad.csv", "lesion_id,image,diagnosis", ["HAM_1,ISIC_1,nv"])
    with pytest.raises(DermkdError, match=r"bad.csv lacks column\(s\) image_id, dx"):
        read_ham10000(bad, images)
    empty = write_csv(tmp_path / "empty.csv", "lesion_id,image_id,dx", [])
    with pytest.raises(DermkdError, match="empty.csv has no rows"):
        read_ham10000(empty, images)
    with pytest.raises(DermkdError, match="not found"):
        read_ham10000(tmp_path / "nope.csv", images)


# --------------------------------------------------------------------------- ISIC 2019
GT_HEADER = "image,MEL,NV,BCC,AK,BKL,DF,VASC,SCC,UNK"


def isic2019_fixture(tmp_path: Path, rows: list[str]) -> tuple[Path, Path]:
    images = tmp_path / "ISIC_2019_Training_Input"
    for i in range(1, 5):
        write_image(images / f"ISIC_000000{i}.jpg", 10 + i)
    return write_csv(tmp_path / "gt.csv", GT_HEADER, rows), images


GT_ROWS = [
    "ISIC_0000001,0.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0000002,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
    "ISIC_0000003,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0",
]


def test_isic2019_one_hot_without_metadata_groups_by_image(tmp_path):
    gt, images = isic2019_fixture(tmp_path, GT_ROWS)
    samples, classes, groups = read_isic2019(gt, images)
    assert [s.label for s in samples] == ["nevus", "melanoma", "squamous cell carcinoma"]
    assert [s.rel for s in samples] == ["ISIC_0000001.jpg", "ISIC_0000002.jpg", "ISIC_0000003.jpg"]
    assert classes == ["melanoma", "nevus", "squamous cell carcinoma"]
    assert groups == ["ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]


def test_isic2019_lesion_groups_from_metadata(tmp_path):
    gt, images = isic2019_fixture(tmp_path, GT_ROWS)
    meta = write_csv(tmp_path / "meta.csv", "image,age_approx,anatom_site_general,lesion_id,sex",
                     ["ISIC_0000001,55.0,anterior torso,BCN_0000001,male",
                      "ISIC_0000002,55.0,anterior torso,BCN_0000001,male",
                      "ISIC_0000003,30.0,head/neck,,female"])
    _, _, groups = read_isic2019(gt, images, meta)
    assert groups == ["BCN_0000001", "BCN_0000001", "ISIC_0000003"]  # empty lesion_id -> image id


def test_isic2019_row_with_two_ones_is_an_error_naming_the_row(tmp_path):
    gt, images = isic2019_fixture(tmp_path, [*GT_ROWS, "ISIC_0000004,1.0,1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0"])
    with pytest.raises(DermkdError, match=r"row 5 \(ISIC_0000004\): expected exactly one 1 .* found 2 \(MEL, NV\)"):
        read_isic2019(gt, images)
    gt, _ = isic2019_fixture(tmp_path, ["ISIC_0000004,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0"])
    with pytest.raises(DermkdError, match="found 0"):
        read_isic2019(gt, images)
    gt, _ = isic2019_fixture(tmp_path, ["ISIC_0000004,0.5,0.5,0.0,0.0,0.0,0.0,0.0,0.0,0.0"])
    with pytest.raises(DermkdError, match="MEL is '0.5', not 0 or 1"):
        read_isic2019(gt, images)


def test_isic2019_unk_rows_are_skipped_with_a_count(tmp_path, caplog):
    gt, images = isic2019_fixture(tmp_path, [*GT_ROWS, "ISIC_0000004,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0",
                                             "ISIC_0009999,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0"])
    with caplog.at_level(logging.WARNING):
        samples, _, groups = read_isic2019(gt, images)  # the UNK image with no file is not needed
    assert len(samples) == len(groups) == 3
    assert "skipped 2 images" in caplog.text and "UNK: 2" in caplog.text
    only_unk, _ = isic2019_fixture(tmp_path, ["ISIC_0000004,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0"])
    with pytest.raises(DermkdError, match="no usable images"):
        read_isic2019(only_unk, images)


def test_isic2019_missing_columns_and_images(tmp_path):
    _, images = isic2019_fixture(tmp_path, GT_ROWS)
    bad = write_csv(tmp_path / "bad.csv", "image,MEL,NV", ["ISIC_0000001,1.0,0.0"])
    with pytest.raises(DermkdError, match=r"bad.csv lacks column\(s\) BCC, AK, BKL, DF, VASC, SCC, UNK"):
        read_isic2019(bad, images)
    missing = write_csv(tmp_path / "gt2.csv", GT_HEADER,
                        [*GT_ROWS, "ISIC_0000008,0,1,0,0,0,0,0,0,0", "ISIC_0000009,0,1,0,0,0,0,0,0,0"])
    with pytest.raises(DermkdError, match=r"2 of 5 images .* \(e.g. ISIC_0000008.jpg\)"):
        read_isic2019(missing, images)


def test_isic2018_ground_truth_is_read_too(tmp_path):
    _, images = isic2019_fixture(tmp_path, GT_ROWS)
    gt = write_csv(tmp_path / "gt2018.csv", "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC",
                   ["ISIC_0000001,0,0,0,1,0,0,0", "ISIC_0000002,0,0,0,0,1,0,0"])
    samples, _, _ = read_isic2019(gt, images)
    assert [s.label for s in samples] == ["actinic keratosis", "pigmented benign keratosis"]


# --------------------------------------------------------------------------- generic CSV
def test_csv_layout_relative_and_absolute_paths_with_and_without_group(tmp_path):
    root = tmp_path / "root"
    write_image(root / "a" / "x.png", 1)
    write_image(root / "b.jpg", 2)
    outside = write_image(tmp_path / "elsewhere" / "c.png", 3)
    inside_abs = (root / "b.jpg").resolve()
    listing = write_csv(tmp_path / "list.csv", "path,label,group",
                        ["a/x.png,Basal_Cell Carcinoma,L1", f"{inside_abs},MEL,L1", f"{outside},nv,"])
    samples, classes, groups = read_csv_layout(listing, root)
    assert [s.rel for s in samples] == ["a/x.png", "b.jpg", outside.resolve().as_posix()]
    assert [s.label for s in samples] == ["basal cell carcinoma", "melanoma", "nevus"]
    assert classes == ["basal cell carcinoma", "melanoma", "nevus"]
    assert groups == ["L1", "L1", outside.resolve().as_posix()]  # empty group -> own path

    nogroup = write_csv(root / "list.csv", "path,label", ["a/x.png,bcc", "b.jpg,melanoma"])
    samples, _, groups = read_csv_layout(nogroup)  # root defaults to the CSV's folder
    assert groups == ["a/x.png", "b.jpg"]


def test_csv_layout_unknown_label_and_allow_new(tmp_path):
    write_image(tmp_path / "t.png", 1)
    write_image(tmp_path / "n.png", 2)
    listing = write_csv(tmp_path / "l.csv", "path,label", ["n.png,nevus", "t.png,Tattoo_Ink"])
    with pytest.raises(DermkdError, match=r"row 3: unknown label 'Tattoo_Ink'; known classes: .*nevus \(NV\)"):
        read_csv_layout(listing, tmp_path)
    _, classes, _ = read_csv_layout(listing, tmp_path, allow_new=True)
    assert classes == ["nevus", "tattoo ink"]


def test_csv_layout_missing_images_columns_duplicates(tmp_path):
    write_image(tmp_path / "n.png", 2)
    missing = write_csv(tmp_path / "m.csv", "path,label", ["n.png,nv", "gone.png,nv", "gone2.png,mel"])
    with pytest.raises(DermkdError, match=r"2 of 3 images listed in .*m.csv are missing \(e.g. .*gone.png\)"):
        read_csv_layout(missing, tmp_path)
    bad = write_csv(tmp_path / "b.csv", "file,label", ["n.png,nv"])
    with pytest.raises(DermkdError, match=r"lacks column\(s\) path"):
        read_csv_layout(bad, tmp_path)
    dup = write_csv(tmp_path / "d.csv", "path,label", ["n.png,nv", f"{tmp_path / 'n.png'},mel"])
    with pytest.raises(DermkdError, match="listed twice"):
        read_csv_layout(dup, tmp_path)


def test_layout_registry():
    assert LAYOUTS.names() == ["csv", "folders", "ham10000", "isic2019", "isic2020"]
    assert [n for n in LAYOUTS if LAYOUTS.get(n).needs_metadata] == ["csv", "ham10000", "isic2019", "isic2020"]
    assert [n for n in LAYOUTS if LAYOUTS.get(n).near_duplicates] == ["folders"]
    with pytest.raises(DermkdError, match="unknown data layout 'ham'; known: csv, folders, ham10000, isic2019"):
        LAYOUTS.get("ham")


# --------------------------------------------------------------------------- through prepare_data
def _ham_tree(tmp_path: Path) -> tuple[Path, Path]:
    """12 lesions x 2 images (nv / mel / bcc) in HAM10000's layout: metadata CSV + image folder."""
    from PIL import Image

    from dermkd.data.synthetic import render_lesion

    images = tmp_path / "HAM10000_images_part_1"
    images.mkdir(parents=True)
    lines = ["lesion_id,image_id,dx,dx_type,age,sex,localization"]
    for k in range(36):
        dx = ("nv", "mel", "bcc")[k % 3]
        for view in range(2):
            image_id = f"ISIC_{k:04d}{view}"
            Image.fromarray(render_lesion(k % 3 + 3, 2 * k + view, 48)).save(images / f"{image_id}.jpg")
            lines.append(f"HAM_{k:04d},{image_id},{dx},histo,50,male,back")
    meta = tmp_path / "HAM10000_metadata.csv"
    meta.write_text("\n".join(lines) + "\n")
    return meta, tmp_path


def test_ham10000_through_prepare_data_keeps_each_lesion_in_one_split(tmp_path):
    from dermkd.config import DataConfig
    from dermkd.data.prepare import prepare_data

    meta, root = _ham_tree(tmp_path)
    data = prepare_data(DataConfig(image_size=32, layout="ham10000", metadata=str(meta)), root, seed=0)
    assert data.classes == ["basal cell carcinoma", "melanoma", "nevus"]
    lesion_splits: dict[str, set[str]] = {}
    for row in data.rows:
        lesion = Path(row.path).stem[:-1]  # ISIC_00070 and ISIC_00071 are views of lesion 7
        lesion_splits.setdefault(lesion, set()).add(row.split)
    assert len(lesion_splits) == 36 and all(len(s) == 1 for s in lesion_splits.values())
    assert {r.split for r in data.rows} == {"train", "val", "test"}


def test_binary_task_maps_classes_to_malignant_and_benign(tmp_path):
    from dermkd.config import DataConfig
    from dermkd.data.prepare import prepare_data

    meta, root = _ham_tree(tmp_path)
    data = prepare_data(DataConfig(image_size=32, layout="ham10000", metadata=str(meta), task="binary"), root, 0)
    assert data.classes == ["benign", "malignant"]
    labels = {Path(r.path).stem: r.label for r in data.rows}
    assert labels["ISIC_00000"] == "benign" and labels["ISIC_00010"] == "malignant"  # nv, mel


def test_metadata_layout_without_its_csv_is_a_clear_error(tmp_path):
    from dermkd.config import DataConfig
    from dermkd.data.prepare import prepare_data

    with pytest.raises(DermkdError, match="needs its metadata CSV"):
        prepare_data(DataConfig(image_size=32, layout="isic2019"), tmp_path, seed=0)


def test_isic2020_ground_truth_maps_diagnoses_groups_lesions_and_skips_unknown(tmp_path, caplog):
    from dermkd.data.layouts import read_isic2020

    images = tmp_path / "train"
    for name in ("ISIC_1", "ISIC_2", "ISIC_3", "ISIC_4"):
        write_image(images / f"{name}.jpg", seed=len(name) + int(name[-1]))
    gt = tmp_path / "ISIC_2020_Training_GroundTruth.csv"
    gt.write_text("image_name,patient_id,lesion_id,sex,age_approx,anatom_site_general_challenge,diagnosis,"
                  "benign_malignant,target\n"
                  "ISIC_1,IP_1,IL_1,male,45,torso,nevus,benign,0\n"
                  "ISIC_2,IP_1,IL_1,male,45,torso,nevus,benign,0\n"
                  "ISIC_3,IP_2,IL_2,female,60,head,melanoma,malignant,1\n"
                  "ISIC_4,IP_3,IL_3,female,30,torso,unknown,benign,0\n")
    with caplog.at_level(logging.WARNING):
        samples, classes, groups = read_isic2020(gt, images)
    assert [s.label for s in samples] == ["nevus", "nevus", "melanoma"]
    assert groups == ["IL_1", "IL_1", "IL_2"] and classes == ["melanoma", "nevus"]
    assert "skipped 1 images" in caplog.text
