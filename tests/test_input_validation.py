"""Bad input at the boundary (issue 12): split files, images, classes too small to split,
and what the exported predictor accepts. Each is a one-line error or a logged skip."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from helpers import build_tree
from PIL import Image

from dermkd.config import DataConfig
from dermkd.data.images import decode_one
from dermkd.data.prepare import prepare_data
from dermkd.errors import DermkdError


def split_file(tmp_path, rows: list[str], encoding: str = "utf-8"):
    path = tmp_path / "split.csv"
    path.write_bytes(("path,label,split\n" + "\n".join(rows) + "\n").encode(encoding))
    return path


def prepare_with(tree, path):
    return prepare_data(DataConfig(root=str(tree), image_size=32, split_file=str(path)), tree, 0)


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "data", {"nevus": 4, "melanoma": 4})


def test_a_path_in_two_splits_is_refused(tree, tmp_path):
    path = split_file(tmp_path, ["nevus/img_00.png,nevus,train", "melanoma/img_00.png,melanoma,val",
                                 "nevus/img_00.png,nevus,test"])
    with pytest.raises(DermkdError, match=r"line 4: nevus/img_00.png is listed twice \(train and test\)"):
        prepare_with(tree, path)


def test_a_label_that_contradicts_the_folder_is_refused(tree, tmp_path):
    path = split_file(tmp_path, ["nevus/img_00.png,melanoma,train", "melanoma/img_00.png,melanoma,test"])
    with pytest.raises(DermkdError, match="split file labels 1 files unlike the data does, e.g. nevus/img_00.png: "
                                          "'melanoma' in the split file, 'nevus' in the data"):
        prepare_with(tree, path)


def test_unknown_labels_are_listed(tree, tmp_path):
    path = split_file(tmp_path, ["nevus/img_00.png,psoriasis,train", "melanoma/img_00.png,acne,test"])
    with pytest.raises(DermkdError, match="split file lists unknown labels: acne, psoriasis"):
        prepare_with(tree, path)


def test_a_split_file_that_is_not_utf8_names_the_line(tree, tmp_path):
    path = split_file(tmp_path, ["nevus/img_00.png,nevus,train", "melanoma/img_00.png,m\u00e9lanoma,test"],
                      encoding="latin-1")
    with pytest.raises(DermkdError, match=r"line 3: not UTF-8 text \(byte 0xe9\)"):
        prepare_with(tree, path)


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    wide = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    path = tmp_path / "deep.png"
    Image.fromarray(wide).save(path)
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    decoded = decode_one(path, 32)
    expected = np.rint(wide * (255.0 / 65535.0)).astype(np.uint8)
    assert decoded.error is None
    assert np.array_equal(decoded.pixels[..., 0], expected) and np.array_equal(decoded.pixels[..., 2], expected)
    assert (decoded.pixels == 255).mean() < 0.01  # Pillow's own convert("RGB") gave 97% white


def test_an_image_over_the_pixel_limit_is_skipped_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    decoded = decode_one(path, 32, max_pixels=100_000)
    assert decoded.pixels is None
    assert decoded.error == "400 x 300 px is over the limit of 100000 px (data.max_image_pixels)"
    assert decode_one(path, 32, max_pixels=120_000).error is None


def test_a_class_too_small_for_val_and_test_is_trained_on_with_a_warning(tmp_path, caplog):
    tree = build_tree(tmp_path / "data", {"nevus": 12, "melanoma": 12, "dermatofibroma": 2})
    with caplog.at_level(logging.WARNING, logger="dermkd"):
        data = prepare_data(DataConfig(root=str(tree), image_size=32), tree, 0)
    df = data.classes.index("dermatofibroma")
    counts = {s: int((data.labels[s] == df).sum()) for s in ("train", "val", "test")}
    assert counts["train"] >= 1 and sum(counts.values()) == 2 and 0 in (counts["val"], counts["test"])
    assert "class 'dermatofibroma' has 2 usable image(s), none in the" in caplog.text
    assert "absent_classes" in caplog.text


def test_a_class_with_no_usable_training_image_is_an_error_naming_it(tmp_path):
    tree = build_tree(tmp_path / "data", {"nevus": 12, "melanoma": 12})
    (tree / "dermatofibroma").mkdir()
    for i in range(3):
        (tree / "dermatofibroma" / f"broken{i}.png").write_bytes(b"not a png")
    with pytest.raises(DermkdError, match=r"class 'dermatofibroma' has 0 usable image\(s\) and none in the train "
                                          r"split"):
        prepare_data(DataConfig(root=str(tree), image_size=32), tree, 0)


def test_the_predictor_rejects_0_255_floats_and_answers_an_empty_batch():
    from dermkd.export.predictor import eager
    from dermkd.models import create_model

    predictor = eager(create_model("dsc", 3, image_size=32).eval(), 32, ["a", "b", "c"], threads=1)
    with pytest.raises(DermkdError, match=r"takes float images in \[0, 1\], got values in \[0, 255\] "
                                          r"\(divide 0-255 pixels by 255\)"):
        predictor(torch.linspace(0, 255, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32))
    assert predictor(np.zeros((0, 3, 32, 32), dtype=np.float32)).shape == (0, 3)
    assert predictor(torch.rand(2, 3, 32, 32)).shape == (2, 3)
