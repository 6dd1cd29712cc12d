"""The source-shift split: per class the oldest images (lowest ISIC id) are the test split."""

from __future__ import annotations

import pytest
from helpers import ISIC_TRAIN, write_image

from dermkd.config import DataConfig, RunConfig
from dermkd.data.prepare import prepare_data
from dermkd.data.splits import source_order, stratified_group_split
from dermkd.errors import DermkdError


def isic_split(ids: dict[str, list[int]], **kwargs):
    paths = [f"{c}/ISIC_{i:07d}.jpg" for c, nums in ids.items() for i in nums]
    labels = [p.split("/")[0] for p in paths]
    return stratified_group_split(paths, labels, paths, order=source_order(paths), **kwargs)


def by_split(report, split):
    return sorted(int(r.path.split("_")[1][:7]) for r in report.rows if r.split == split)


def test_source_order_reads_isic_ids_and_falls_back_to_the_last_number():
    assert source_order(["a/ISIC_0000139.jpg", "b/ISIC_0024504_downsampled.jpg", "c/synth_0007.png"]) == [139, 24504, 7]
    with pytest.raises(DermkdError, match="has no"):
        source_order(["a/lesion.jpg"])


def test_the_oldest_images_of_each_class_are_the_test_split():
    ids = {"melanoma": list(range(100, 120)), "nevus": list(range(500, 540, 2))}
    rep = isic_split(ids, val_fraction=0.2, test_fraction=0.15, seed=0)
    assert by_split(rep, "test") == [100, 101, 102, 500, 502, 504]
    val = by_split(rep, "val")
    assert len(val) == 8 and min(val) > 102
    # validation is random among the rest, not the next-oldest, and follows the seed
    assert val != [103, 104, 105, 106, 506, 508, 510, 512]
    assert val != by_split(isic_split(ids, val_fraction=0.2, test_fraction=0.15, seed=1), "val")
    assert by_split(isic_split(ids, val_fraction=0.2, test_fraction=0.15, seed=1), "test") == by_split(rep, "test")


def test_source_shift_folds_are_consecutive_eras():
    ids = {"melanoma": list(range(1, 21))}
    tests = [by_split(isic_split(ids, val_fraction=0.2, test_fraction=0.15, seed=0, folds=4, fold=k), "test")
             for k in range(4)]
    assert tests == [list(range(1, 6)), list(range(6, 11)), list(range(11, 16)), list(range(16, 21))]


def test_a_group_is_as_old_as_its_oldest_member():
    paths = ["melanoma/ISIC_0000050.jpg", "melanoma/ISIC_0000001.jpg"] + [f"melanoma/ISIC_{i:07d}.jpg"
                                                                         for i in range(10, 20)]
    keys = ["copy", "other1"] + [f"k{i}" for i in range(10)]
    keys[0] = keys[5] = "dup"  # ISIC_50 is a copy of ISIC_13
    rep = stratified_group_split(paths, ["melanoma"] * len(paths), keys, val_fraction=0.2, test_fraction=0.25,
                                 seed=0, order=source_order(paths))
    split = {r.path: r.split for r in rep.rows}
    assert split["melanoma/ISIC_0000050.jpg"] == split["melanoma/ISIC_0000013.jpg"]
    assert split["melanoma/ISIC_0000001.jpg"] == "test"


def test_prepare_data_with_the_source_shift_strategy(tmp_path):
    for cls in ("nevus", "melanoma"):
        for i in range(8):
            write_image(tmp_path / cls / f"ISIC_{(i * 7 + len(cls)):07d}.jpg", seed=i + 10 * len(cls))
    data = prepare_data(DataConfig(image_size=32, split_strategy="source-shift", near_duplicates=False), tmp_path,
                        seed=0)
    assert data.split_report["split_strategy"] == "source-shift"
    test_ids = sorted(data.paths["test"])
    assert test_ids == ["melanoma/ISIC_0000008.jpg", "nevus/ISIC_0000005.jpg"]
    with pytest.raises(DermkdError, match="data.split_strategy must be 'random' or 'source-shift', not str 'by-year'"):
        RunConfig(data=DataConfig(split_strategy="by-year")).validate()


@pytest.mark.isic
def test_isic9_source_shift_holds_out_old_melanomas():
    if not ISIC_TRAIN.is_dir():
        pytest.skip(f"isic9 data not found at {ISIC_TRAIN}")
    paths = [str(p.relative_to(ISIC_TRAIN)) for p in sorted(ISIC_TRAIN.glob("melanoma/*.jpg"))]
    rep = stratified_group_split(paths, ["melanoma"] * len(paths), paths, val_fraction=0.15, test_fraction=0.15,
                                 seed=0, order=source_order(paths))
    test = [source_order([r.path])[0] for r in rep.rows if r.split == "test"]
    train = [source_order([r.path])[0] for r in rep.rows if r.split == "train"]
    assert len(test) == 66 and max(test) < min(train)
