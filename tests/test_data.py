"""Data: taxonomy, folder scanning, unreadable files, leakage-free splits, split files,
the data fingerprint, and the known defects of the real isic9 copy."""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter, defaultdict

import pytest
import torch

from helpers import ISIC_TRAIN, build_tree, write_image
from dermkd.config import DataConfig
from dermkd.data.prepare import prepare_data
from dermkd.data.scan import scan_folders
from dermkd.data.splits import SPLITS, SplitRow, read_split, stratified_group_split, write_split
from dermkd.data.taxonomy import ISIC9, class_order, code_of, normalise, resolve, resolve_classes
from dermkd.errors import DermkdError

CFG32 = dict(image_size=32)


# --------------------------------------------------------------------------- taxonomy
def test_folder_names_map_case_space_underscore_insensitively_and_by_code():
    got = resolve_classes(["Basal_Cell  Carcinoma", "MEL", "nevus", "Pigmented-Benign_KERATOSIS", " vasc ", "sk"])
    assert got == ["basal cell carcinoma", "melanoma", "nevus", "pigmented benign keratosis",
                   "vascular lesion", "seborrheic keratosis"]
    assert normalise("Basal_Cell  carcinoma") == "basal cell carcinoma"
    assert resolve("ak").name == "actinic keratosis"
    assert resolve("not a lesion") is None
    assert code_of("Squamous_Cell_Carcinoma") == "SCC"


def test_unknown_folder_is_an_error_listing_known_classes():
    with pytest.raises(DermkdError) as err:
        resolve_classes(["nevus", "tattoo"])
    msg = str(err.value)
    assert "'tattoo'" in msg
    for c in ISIC9:
        assert f"{c.name} ({c.code})" in msg
    assert "--allow-new-classes" in msg


def test_allow_new_accepts_unknown_folder_under_normalised_name():
    assert resolve_classes(["nevus", "Tattoo_Ink"], allow_new=True) == ["nevus", "tattoo ink"]
    # extra classes come after the ISIC9 ones, sorted
    assert class_order(["tattoo ink", "nevus", "acne", "melanoma"]) == ["melanoma", "nevus", "acne", "tattoo ink"]


def test_two_folders_for_one_class_is_an_error():
    with pytest.raises(DermkdError, match="several folders map to the same class: melanoma"):
        resolve_classes(["MEL", "melanoma"])


def test_malignant_flags():
    flags = {c.code: c.malignant for c in ISIC9}
    assert flags == {"AK": True, "BCC": True, "DF": False, "MEL": True, "NV": False,
                     "PBK": False, "SK": False, "SCC": True, "VASC": False}


# --------------------------------------------------------------------------- scanning
def test_scan_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DermkdError, match="data path does not exist") as err:
        scan_folders(missing)
    assert str(missing) in str(err.value)


def test_scan_file_instead_of_folder(tmp_path):
    f = write_image(tmp_path / "x.png", 0)
    with pytest.raises(DermkdError, match="data path is not a folder") as err:
        scan_folders(f)
    assert str(f) in str(err.value)


def test_scan_root_without_class_folders(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / ".hidden").mkdir()  # hidden folders are not class folders
    with pytest.raises(DermkdError) as err:
        scan_folders(root)
    msg = str(err.value)
    assert f"no class folders under {root}" in msg
    assert "found images directly under it" not in msg


def test_scan_images_directly_under_root_gives_a_hint(tmp_path):
    root = tmp_path / "root"
    write_image(root / "lesion1.jpg", 0)
    with pytest.raises(DermkdError) as err:
        scan_folders(root)
    msg = str(err.value)
    assert f"no class folders under {root}" in msg
    assert "found images directly under it, e.g. lesion1.jpg" in msg


def test_scan_empty_class_folder(tmp_path):
    root = build_tree(tmp_path / "root", {"nevus": 2})
    empty = root / "melanoma"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(DermkdError, match="class folder has no images") as err:
        scan_folders(root)
    assert str(empty) in str(err.value)


def test_scan_ignores_hidden_and_non_image_files(tmp_path):
    root = build_tree(tmp_path / "root", {"nevus": 2, "MEL": 1})
    write_image(root / "nevus" / ".hidden.png", 99)
    (root / "nevus" / "readme.txt").write_text("x")
    (root / "nevus" / "Thumbs.db").write_bytes(b"\0\1")
    write_image(root / "nevus" / "sub" / "deep.JPG", 98, fmt="JPEG")  # nested, upper-case extension
    samples, classes = scan_folders(root)
    assert classes == ["melanoma", "nevus"]
    assert sorted(s.rel for s in samples) == ["MEL/img_00.png", "nevus/img_00.png", "nevus/img_01.png",
                                              "nevus/sub/deep.JPG"]
    assert {s.rel: s.label for s in samples}["MEL/img_00.png"] == "melanoma"
    assert all(s.path.is_absolute() and s.path.is_file() for s in samples)


# --------------------------------------------------------------------------- unreadable files
def test_corrupt_images_are_skipped_with_a_warning(tmp_path, caplog):
    root = build_tree(tmp_path / "root", {"nevus": 5, "melanoma": 5})
    good = write_image(root / "nevus" / "trunc.jpg", 1234, size=64)
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # truncated JPEG: header fine, scan data cut
    (root / "melanoma" / "text.jpg").write_text("this is not a JPEG at all\n" * 10)
    with caplog.at_level(logging.WARNING, logger="dermkd"):
        prep = prepare_data(DataConfig(**CFG32), root, seed=0)
    skipped = {d["path"]: d["reason"] for d in prep.skipped}
    assert set(skipped) == {"nevus/trunc.jpg", "melanoma/text.jpg"}
    assert all(r.startswith("not a readable image") for r in skipped.values())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("trunc.jpg" in m and "skipping" in m for m in warned)
    assert any("text.jpg" in m and "skipping" in m for m in warned)
    # the 10 good images are used, the bad ones appear in no split
    assert sum(int(prep.labels[s].numel()) for s in SPLITS) == 10
    assert {r.path for r in prep.rows}.isdisjoint(skipped)
    assert prep.summary()["skipped_files"] == prep.skipped
    for s in SPLITS:
        assert prep.images[s].dtype == torch.uint8
        assert tuple(prep.images[s].shape[1:]) == (3, 32, 32)
        assert prep.images[s].shape[0] == prep.labels[s].shape[0] > 0


def test_only_unreadable_images_is_an_error(tmp_path):
    root = tmp_path / "root"
    (root / "nevus").mkdir(parents=True)
    (root / "nevus" / "a.jpg").write_text("nope")
    with pytest.raises(DermkdError, match="no readable images under"):
        prepare_data(DataConfig(**CFG32), root, seed=0)


# --------------------------------------------------------------------------- splits
def _dup_fixture():
    """Hand-built samples: unique files, duplicate groups and label conflicts.

    class a: a/u00..a/u09 unique; a/d1, a/d2, a/d3 identical (hash 'dupA')
    class b: b/u00..b/u09 unique; b/e1, b/e2 identical (hash 'dupB')
    conflict 'cx': a/cx.jpg (a) == b/cx.jpg (b)            -> first by path: a/cx.jpg
    conflict 'cy': b/cy.jpg (b) == a/zy.jpg (a)            -> first by path: a/zy.jpg
    conflict 'cz': a/cz1 (a), a/cz2 (a), b/cz3 (b)         -> first by path: a/cz1
    """
    items = [(f"a/u{i:02d}.jpg", "a", f"ha{i}") for i in range(10)]
    items += [(f"b/u{i:02d}.jpg", "b", f"hb{i}") for i in range(10)]
    items += [("a/d1.jpg", "a", "dupA"), ("a/d2.jpg", "a", "dupA"), ("a/d3.jpg", "a", "dupA")]
    items += [("b/e1.jpg", "b", "dupB"), ("b/e2.jpg", "b", "dupB")]
    items += [("b/cx.jpg", "b", "cx"), ("a/cx.jpg", "a", "cx")]
    items += [("b/cy.jpg", "b", "cy"), ("a/zy.jpg", "a", "cy")]
    items += [("a/cz1.jpg", "a", "cz"), ("b/cz3.jpg", "b", "cz"), ("a/cz2.jpg", "a", "cz")]
    paths, labels, hashes = (list(t) for t in zip(*items))
    return paths, labels, hashes


def _split(paths, labels, hashes, seed=0, policy="drop", val=0.2, test=0.2):
    return stratified_group_split(paths, labels, hashes, val_fraction=val, test_fraction=test, seed=seed, policy=policy)


def _assert_no_hash_crosses_splits(rows, paths, hashes):
    h = dict(zip(paths, hashes))
    where = defaultdict(set)
    for r in rows:
        where[h[r.path]].add(r.split)
    crossing = {k: v for k, v in where.items() if len(v) > 1}
    assert not crossing


@pytest.mark.parametrize("seed", range(5))
def test_identical_files_never_cross_splits(seed):
    paths, labels, hashes = _dup_fixture()
    for policy in ("drop", "keep-first"):
        rep = _split(paths, labels, hashes, seed=seed, policy=policy)
        _assert_no_hash_crosses_splits(rep.rows, paths, hashes)
        # all copies of a kept duplicate group are kept, together
        kept = {r.path for r in rep.rows}
        assert {"a/d1.jpg", "a/d2.jpg", "a/d3.jpg"} <= kept
        assert {"b/e1.jpg", "b/e2.jpg"} <= kept


def test_conflict_policy_drop_removes_every_copy():
    paths, labels, hashes = _dup_fixture()
    rep = _split(paths, labels, hashes, policy="drop")
    conflict_paths = {"a/cx.jpg", "b/cx.jpg", "b/cy.jpg", "a/zy.jpg", "a/cz1.jpg", "a/cz2.jpg", "b/cz3.jpg"}
    assert set(rep.dropped) == conflict_paths
    assert len(rep.dropped) == 7
    assert {r.path for r in rep.rows} == set(paths) - conflict_paths
    assert len(rep.rows) == len(paths) - 7 == 25
    assert rep.duplicate_groups == 5  # dupA, dupB, cx, cy, cz
    assert rep.conflict_groups == 3


def test_conflict_policy_keep_first_keeps_the_first_copy_by_path():
    paths, labels, hashes = _dup_fixture()
    rep = _split(paths, labels, hashes, policy="keep-first")
    kept = {r.path: r.label for r in rep.rows}
    # two-copy conflicts: only the first by path survives, with its own label
    assert kept.get("a/cx.jpg") == "a" and "b/cx.jpg" not in kept
    assert kept.get("a/zy.jpg") == "a" and "b/cy.jpg" not in kept
    # three copies: the copies that agree with the first label stay (one group, one split)
    assert kept.get("a/cz1.jpg") == "a" and kept.get("a/cz2.jpg") == "a" and "b/cz3.jpg" not in kept
    assert sorted(rep.dropped) == ["b/cx.jpg", "b/cy.jpg", "b/cz3.jpg"]
    assert len(rep.rows) == len(paths) - 3
    assert rep.duplicate_groups == 5
    assert rep.conflict_groups == 3
    by_path = {r.path: r.split for r in rep.rows}
    assert by_path["a/cz1.jpg"] == by_path["a/cz2.jpg"]


def test_split_rows_are_sorted_and_labels_preserved():
    paths, labels, hashes = _dup_fixture()
    rep = _split(paths, labels, hashes)
    assert [r.path for r in rep.rows] == sorted(r.path for r in rep.rows)
    lab = dict(zip(paths, labels))
    assert all(r.label == lab[r.path] and r.split in SPLITS for r in rep.rows)


def _many(n_per_class=100, classes=("a", "b", "c")):
    paths, labels, hashes = [], [], []
    for c in classes:
        for i in range(n_per_class):
            paths.append(f"{c}/img_{i:03d}.jpg")
            labels.append(c)
            hashes.append(f"{c}-{i}")
    return paths, labels, hashes


def test_same_seed_same_rows_different_seed_different_assignment():
    paths, labels, hashes = _many(40)
    r1 = _split(paths, labels, hashes, seed=7)
    r2 = _split(list(paths), list(labels), list(hashes), seed=7)
    assert r1.rows == r2.rows
    r3 = _split(paths, labels, hashes, seed=8)
    assert [r.path for r in r3.rows] == [r.path for r in r1.rows]
    assert [r.split for r in r3.rows] != [r.split for r in r1.rows]
    # input order does not matter (rows are keyed by path)
    rev = _split(paths[::-1], labels[::-1], hashes[::-1], seed=7)
    assert rev.rows == r1.rows


def _groups_fixture(sizes, pair_class=None, pair_groups=0):
    paths, labels, hashes = [], [], []
    for c, n in sizes.items():
        for i in range(n):
            paths.append(f"{c}/{i}.jpg")
            labels.append(c)
            hashes.append(f"{c}{i}")
    if pair_class:  # groups made of two identical copies each
        for i in range(2 * pair_groups):
            paths.append(f"{pair_class}/{i}.jpg")
            labels.append(pair_class)
            hashes.append(f"{pair_class}{i // 2}")
    return paths, labels, hashes


def test_every_class_with_four_or_more_groups_is_in_every_split():
    paths, labels, hashes = _groups_fixture({"b": 4, "c": 5, "d": 30, "e": 2}, pair_class="f", pair_groups=4)
    for seed in range(10):
        rep = _split(paths, labels, hashes, seed=seed, val=0.15, test=0.15)
        present = defaultdict(set)
        for r in rep.rows:
            present[r.label].add(r.split)
        for c in ("b", "c", "d", "f"):
            assert present[c] == set(SPLITS), (seed, c, present[c])
        # a class with only 2 groups keeps at least one in train
        assert "train" in present["e"]
        _assert_no_hash_crosses_splits(rep.rows, paths, hashes)


def test_every_class_with_three_groups_is_in_every_split():
    paths, labels, hashes = _groups_fixture({"a": 3}, pair_class="f", pair_groups=3)
    rep = _split(paths, labels, hashes, seed=0, val=0.15, test=0.15)
    present = defaultdict(set)
    for r in rep.rows:
        present[r.label].add(r.split)
    assert present["a"] == set(SPLITS)
    assert present["f"] == set(SPLITS)


def test_prepare_data_with_three_images_per_class(tmp_path):
    root = build_tree(tmp_path / "root", {"nevus": 3, "melanoma": 3})
    prep = prepare_data(DataConfig(**CFG32), root, seed=0)
    assert all(int(prep.labels[s].numel()) == 2 for s in SPLITS)


def test_fractions_roughly_respected_on_300_samples():
    paths, labels, hashes = _many(100)
    rep = _split(paths, labels, hashes, seed=3, val=0.15, test=0.15)
    counts = Counter(r.split for r in rep.rows)
    assert sum(counts.values()) == 300
    assert abs(counts["test"] - 45) <= 3
    assert abs(counts["val"] - 45) <= 3
    assert abs(counts["train"] - 210) <= 6
    per_class = Counter((r.label, r.split) for r in rep.rows)
    for c in "abc":
        assert abs(per_class[(c, "test")] - 15) <= 1
        assert abs(per_class[(c, "val")] - 15) <= 1
    rep2 = _split(paths, labels, hashes, seed=3, val=0.1, test=0.3)
    counts2 = Counter(r.split for r in rep2.rows)
    assert abs(counts2["test"] - 90) <= 3 and abs(counts2["val"] - 30) <= 3


# --------------------------------------------------------------------------- split files
def test_split_file_round_trip(tmp_path):
    rows = [SplitRow("nevus/a b.jpg", "nevus", "train"), SplitRow("melanoma/x,y.jpg", "melanoma", "val"),
            SplitRow("melanoma/z.jpg", "melanoma", "test")]
    f = tmp_path / "sub" / "split.csv"
    write_split(f, rows)
    assert read_split(f) == rows
    assert f.read_text(encoding="utf-8").splitlines()[0] == "path,label,split"
    assert [p.name for p in f.parent.iterdir()] == ["split.csv"]  # no temp file left


def test_split_file_bad_columns(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("file,label,split\nnevus/a.jpg,nevus,train\n")
    with pytest.raises(DermkdError, match="must have columns path,label,split") as err:
        read_split(f)
    assert str(f) in str(err.value)


def test_split_file_unknown_split_value(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("path,label,split\nnevus/a.jpg,nevus,train\nnevus/b.jpg,nevus,training\n")
    with pytest.raises(DermkdError, match=r"unknown split 'training' for nevus/b.jpg"):
        read_split(f)


def test_split_file_missing_or_empty(tmp_path):
    with pytest.raises(DermkdError, match="split file not found") as err:
        read_split(tmp_path / "missing.csv")
    assert str(tmp_path / "missing.csv") in str(err.value)
    f = tmp_path / "empty.csv"
    f.write_text("path,label,split\n")
    with pytest.raises(DermkdError, match="is empty"):
        read_split(f)


def test_prepare_with_split_file_reproduces_the_split(tiny_tree, tmp_path):
    first = prepare_data(DataConfig(**CFG32), tiny_tree, seed=5)
    split_csv = tmp_path / "split.csv"
    write_split(split_csv, first.rows)
    # another seed: the split must come from the file, not from the seed
    again = prepare_data(DataConfig(split_file=str(split_csv), **CFG32), tiny_tree, seed=123)
    assert [(r.path, r.label, r.split) for r in again.rows] == [(r.path, r.label, r.split) for r in first.rows]
    assert again.classes == first.classes == ["basal cell carcinoma", "melanoma", "nevus"]
    assert again.fingerprint == first.fingerprint
    for s in SPLITS:
        assert torch.equal(again.images[s], first.images[s])
        assert torch.equal(again.labels[s], first.labels[s])
    other_seed = prepare_data(DataConfig(**CFG32), tiny_tree, seed=123)
    assert [r.split for r in other_seed.rows] != [r.split for r in first.rows]  # the file mattered


def test_split_file_with_path_outside_root_is_an_error(tiny_tree, tmp_path):
    first = prepare_data(DataConfig(**CFG32), tiny_tree, seed=0)
    rows = first.rows + [SplitRow("nevus/ghost.png", "nevus", "train")]
    split_csv = tmp_path / "split.csv"
    write_split(split_csv, rows)
    with pytest.raises(DermkdError, match=r"split file lists 1 files not under the data root \(e.g. nevus/ghost.png\)"):
        prepare_data(DataConfig(split_file=str(split_csv), **CFG32), tiny_tree, seed=0)


def test_split_file_labels_written_as_codes_are_canonicalised(tiny_tree, tmp_path):
    first = prepare_data(DataConfig(**CFG32), tiny_tree, seed=0)
    split_csv = tmp_path / "split.csv"
    with split_csv.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "split"])
        for r in first.rows:
            w.writerow([r.path, code_of(r.label), r.split])
    again = prepare_data(DataConfig(split_file=str(split_csv), **CFG32), tiny_tree, seed=0)
    assert [(r.path, r.label, r.split) for r in again.rows] == [(r.path, r.label, r.split) for r in first.rows]


# --------------------------------------------------------------------------- fingerprint
def test_fingerprint_stable_and_sensitive_to_one_image(tiny_tree):
    cfg = DataConfig(**CFG32)
    a = prepare_data(cfg, tiny_tree, seed=0)
    b = prepare_data(cfg, tiny_tree, seed=0)
    assert a.fingerprint == b.fingerprint
    assert len(a.fingerprint) == 64
    write_image(tiny_tree / "nevus" / "img_03.png", 10_000)  # new bytes, same path
    c = prepare_data(cfg, tiny_tree, seed=0)
    assert c.fingerprint != a.fingerprint
    assert [(r.path, r.split) for r in c.rows] == [(r.path, r.split) for r in a.rows]


# --------------------------------------------------------------------------- real data
@pytest.mark.isic
@pytest.mark.skipif(not ISIC_TRAIN.is_dir(), reason=f"real data not found at {ISIC_TRAIN}")
def test_isic9_known_defects_are_handled():
    samples, classes = scan_folders(ISIC_TRAIN)
    assert len(samples) == 2241
    assert classes == [c.name for c in ISIC9]
    counts = Counter(s.label for s in samples)
    assert counts == {"actinic keratosis": 114, "basal cell carcinoma": 378, "dermatofibroma": 95,
                      "melanoma": 438, "nevus": 357, "pigmented benign keratosis": 462,
                      "seborrheic keratosis": 77, "squamous cell carcinoma": 181, "vascular lesion": 139}
    paths = [s.rel for s in samples]
    labels = [s.label for s in samples]
    hashes = [hashlib.sha256(s.path.read_bytes()).hexdigest() for s in samples]

    rep = stratified_group_split(paths, labels, hashes, val_fraction=0.15, test_fraction=0.15, seed=0, policy="drop")
    # Independent count with hashlib: groups of byte-identical files, and those spanning 2+ classes.
    by_hash = defaultdict(set)
    members = Counter(hashes)
    for lab, h in zip(labels, hashes):
        by_hash[h].add(lab)
    assert rep.duplicate_groups == sum(1 for n in members.values() if n > 1)
    assert rep.conflict_groups == sum(1 for v in by_hash.values() if len(v) > 1)
    # NOTE: the data README says 159 duplicate groups / 155 conflicts (78 MEL<->SK, 77 AK<->NV); this copy
    # of Train/ (2241 files, per-class counts as in the README) actually has 141 groups of 2 identical
    # files, 137 of them across classes (75 MEL<->SK, 62 AK<->NV) and 4 within one class (2 BCC, 1 MEL,
    # 1 NV). The numbers below are the measured ones.
    assert rep.duplicate_groups == 141
    assert rep.conflict_groups == 137
    pairs = Counter(tuple(sorted(v)) for v in by_hash.values() if len(v) > 1)
    assert pairs == {("melanoma", "seborrheic keratosis"): 75, ("actinic keratosis", "nevus"): 62}
    conflict_files = [p for p, h in zip(paths, hashes) if len(by_hash[h]) > 1]
    assert sorted(rep.dropped) == sorted(conflict_files)
    assert len(rep.rows) == 2241 - len(conflict_files)
    _assert_no_hash_crosses_splits(rep.rows, paths, hashes)
    assert {r.split for r in rep.rows} == set(SPLITS)

    keep = stratified_group_split(paths, labels, hashes, val_fraction=0.15, test_fraction=0.15, seed=0,
                                  policy="keep-first")
    assert keep.conflict_groups == 137
    assert len(keep.dropped) == 137
    _assert_no_hash_crosses_splits(keep.rows, paths, hashes)
    kept_hashes = Counter(hashes[paths.index(r.path)] for r in keep.rows)
    assert all(kept_hashes[h] >= 1 for h, v in by_hash.items() if len(v) > 1)


# --------------------------------------------------------------------------- near duplicates and policies
def test_keep_majority_keeps_the_majority_label_and_drops_ties():
    paths = ["a/1.png", "a/2.png", "b/3.png", "a/4.png", "b/5.png", "c/6.png"]
    labels = ["nevus", "nevus", "melanoma", "nevus", "melanoma", "melanoma"]
    keys = ["g1", "g1", "g1", "g2", "g2", "g3"]  # g1: 2 nevus vs 1 melanoma; g2: a tie
    rep = stratified_group_split(paths, labels, keys, val_fraction=0.2, test_fraction=0.2, seed=0,
                                 policy="keep-majority")
    assert sorted(rep.dropped) == ["a/4.png", "b/3.png", "b/5.png"]
    assert sorted(r.path for r in rep.rows) == ["a/1.png", "a/2.png", "c/6.png"]
    assert rep.conflict_groups == 2


def test_near_duplicates_share_a_split_and_conflicting_ones_are_dropped(tmp_path):
    from PIL import Image

    from dermkd.data.synthetic import render_lesion

    root = tmp_path / "data"
    for c, cls in enumerate(["melanoma", "nevus", "basal cell carcinoma"]):
        for i in range(8):
            write = root / cls / f"{cls[:3]}_{i}.png"
            write.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(render_lesion(c + 3 * (c == 2), i, 96)).save(write)
    original = Image.open(root / "melanoma" / "mel_0.png")
    # a resized, flipped, re-encoded copy in the same class, and one under another label
    original.resize((70, 70)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "melanoma" / "mel_copy.jpg",
                                                                               quality=70)
    original.transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(root / "nevus" / "nev_conflict.png")
    Image.open(root / "nevus" / "nev_1.png").resize((80, 80)).save(root / "nevus" / "nev_1_small.png")
    data = prepare_data(DataConfig(image_size=32), root, seed=0)
    split_of = {r.path: r.split for r in data.rows}
    assert split_of["nevus/nev_1_small.png"] == split_of["nevus/nev_1.png"]  # a same-label copy: one split
    assert "melanoma/mel_copy.jpg" not in split_of  # the group has a nevus copy too: a conflict, dropped
    assert "nevus/nev_conflict.png" not in split_of and "melanoma/mel_0.png" not in split_of
    assert data.split_report["conflict_groups"] == 1
    assert data.split_report["grouping"] == "near duplicates <= 4"
    # without near-duplicate grouping, the copies are different files and all stay
    exact = prepare_data(DataConfig(image_size=32, near_duplicates=False), root, seed=0)
    assert {"melanoma/mel_copy.jpg", "nevus/nev_conflict.png"} <= {r.path for r in exact.rows}


def test_external_test_folder_is_the_test_split_and_leakage_is_reported(tmp_path, caplog):
    import shutil

    from PIL import Image

    from dermkd.data.synthetic import render_lesion

    train, test = tmp_path / "Train", tmp_path / "Test"
    for c, cls in enumerate(["melanoma", "nevus"]):
        for i in range(10):
            for root, kind in ((train, c + 3), (test, c)):  # test images drawn from other classes' looks
                (root / cls).mkdir(parents=True, exist_ok=True)
                if root is test and i >= 4:
                    continue
                Image.fromarray(render_lesion(kind, i, 96)).save(root / cls / f"{i}.png")
    shutil.copy(train / "melanoma" / "5.png", test / "melanoma" / "copied.png")  # exact copy
    Image.open(train / "nevus" / "7.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(test / "nevus" / "flip.png")
    with caplog.at_level(logging.WARNING):
        data = prepare_data(DataConfig(image_size=32, test_root=str(test)), train, seed=0)
    test_rows = [r for r in data.rows if r.split == "test"]
    assert len(test_rows) == 10 and all(r.path.startswith("@test/") for r in test_rows)
    assert all(not r.path.startswith("@test/") for r in data.rows if r.split != "test")
    leaks = data.split_report["test_leakage"]
    assert sorted(sorted(g) for g in leaks) == [["Test/melanoma/copied.png", "Train/melanoma/5.png"],
                                                ["Test/nevus/flip.png", "Train/nevus/7.png"]]
    assert "also appear in the training data" in caplog.text


def test_kfold_puts_every_group_in_exactly_one_test_fold():
    paths = [f"c{k % 3}/{k}.png" for k in range(60)]
    labels = [f"class{(k // 2) % 3}" for k in range(60)]
    keys = [f"g{k // 2}" for k in range(60)]  # pairs of files share a group
    test_of = {}
    for fold in range(5):
        rep = stratified_group_split(paths, labels, keys, val_fraction=0.2, test_fraction=0.15, seed=3,
                                     folds=5, fold=fold)
        split = {r.path: r.split for r in rep.rows}
        for p in paths:
            if split[p] == "test":
                assert p not in test_of, "a file is a test file in two folds"
                test_of[p] = fold
        assert {r.split for r in rep.rows} == {"train", "val", "test"}
        assert len({keys[paths.index(p)] for p in paths if split[p] == "test"} &
                   {keys[paths.index(p)] for p in paths if split[p] != "test"}) == 0
    assert len(test_of) == 60  # every file is tested once
