"""`dermkd data audit`: what is in a data set, and what is wrong with it.

For one or more class-folder trees (`<root>/<class>/*.jpg`, labels canonicalised as for
training) the audit reports: images per class (per root) and the imbalance ratio
(largest / smallest class), image size / format / mode statistics, unreadable or
truncated files, exact duplicates (same sha256), near duplicates (perceptual hash),
label conflicts (a duplicate group carrying more than one label) and leakage (a group
spanning more than one split; with several roots each root is a split named after its
folder, with a split file its `split` column decides). Outputs: rich tables
(`print_summary`), `audit.json` listing every group and `audit.html` with thumbnails
(`write_audit`).

Pipeline: `scan_folders` per root -> per file, in a thread pool: read, sha256, and (only
if that content is not in the cache) decode with Pillow + 20 pHashes (`phash.py`) ->
exact groups by sha256 -> all-pairs near search over distinct contents (`groups.py`),
union-find into groups. A group whose files all have the same bytes is "exact"; a group
of 2+ different contents within the threshold is "near" (it lists their byte copies too,
so an exact group can also sit inside a near group; a near group is a conflict when its
files carry more than one label, even if an exact conflict inside it is the cause).

The cache (`cache.py`) maps content sha256 -> decode results, so a second audit of the
same files only reads and hashes bytes: 2241 isic9 files take ~0.1 s to hash, plus
~0.1 s for the all-pairs search.

Hash and default threshold (measured, this repository, isic9 Train and synthetic lesions)
---------------------------------------------------------------------------------------
The 64-bit DCT pHash (see `phash.py`) is computed for 4 flips x 5 centred crops (0, 2.5,
5, 7.5, 10% per border); distance = min over one image's 20 views vs the other's plain
view, both ways. Plain pHash + flips alone does not catch crops: a 6% border crop was at
mean distance 11.4 (max 26) from its original, inside the bulk of distinct pairs. With the
crop views, transformed copies of every 2nd isic image (n = 1050 per row; 180 px JPEG)
and of 450 synthetic 96 px lesions are within the distance below this share of the time:

    copy of the original             isic  <=2 / <=4 / <=6     synthetic <=2 / <=4 / <=6
    resized to 70%                   99.9 / 100  / 100          98.9 / 100  / 100
    re-encoded JPEG q60              98.8 / 100  / 100          96.7 / 99.8 / 100
    h-flip, v-flip                   100  / 100  / 100          100  / 100  / 100   (always 0)
    5% border crop                   99.7 / 100  / 100          98.4 / 100  / 100
    6% border crop                   82.5 / 98.9 / 100          74.4 / 97.6 / 100
    8% border crop                   97.6 / 100  / 100          74.2 / 97.3 / 99.8
    4-8% crop + resize + flip + q60  90.4 / 99.7 / 100          82.7 / 98.0 / 100

Distinct images (pairs of different content): isic9 has 2100 distinct contents, 2,203,950
pairs; within distance 0 / 2 / 4 / 6 / 8 / 10 there are 2 / 9 / 50 / 190 / 695 / 2460
pairs. Looked at one by one, 14 of the 50 pairs within 4 are the same lesion (2 at 0 are
re-encodings; others are re-photographs or colour-shifted copies that ISIC carries under
different ids) and 36 are different lesions with the same layout (a dark blob centred on
plain skin: grayscale low frequencies are all the hash sees). Synthetic lesions: 101,025
pairs, 0 / 0 / 3 / 32 / 144 within 0 / 2 / 4 / 6 / 8.

Default threshold 4: every resized, re-encoded, flipped and 5% / 8%-cropped isic copy is
found and 97-99% of the 6%-cropped and combined ones (their crop falls between two crop
views); the false-match rate on isic distinct pairs is 36 / 2,203,950 = 1.6e-5 per pair
(3e-5 on synthetic), which gives 25 near groups on isic9 (72 files, the largest a chain
of 14 look-alike images). Threshold 6 would find the remaining crops (100%) but has 3.8x
the pairs (190, a sample of them inspected: all different lesions) and chains them into
49 groups, one of 46 images, which buries the real findings; use `threshold=6` where
cropped copies matter more than review time. Hashes have 32 set bits, so distances are
even: 5 behaves like 4. Threshold 0 finds only copies whose hash of some view is identical.
"""

from dermkd.data.audit.core import DEFAULT_THRESHOLD, AuditConfig, AuditFile, AuditResult, Group, audit
from dermkd.data.audit.report import print_summary, to_dict, write_audit

__all__ = ["DEFAULT_THRESHOLD", "AuditConfig", "AuditFile", "AuditResult", "Group", "audit", "print_summary",
           "to_dict", "write_audit"]
