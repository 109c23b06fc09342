"""Loader for the MIMIC-CXR-JPG layout (real radiographs and reports, credentialed access).

Expected layout (the PhysioNet releases, unchanged)::

    <root>/files/p10/p10000032/s50414267/02aa804e-....jpg     images (MIMIC-CXR-JPG)
    <reports>/files/p10/p10000032/s50414267.txt               reports (MIMIC-CXR)
    <root>/mimic-cxr-2.0.0-chexpert.csv[.gz]                  CheXpert-labeller labels

``<reports>`` defaults to ``<root>``. Reports are cut to their FINDINGS and IMPRESSION
sections and split into sentences. An optional edema-severity CSV (columns ``subject_id``,
``study_id``, ``edema_severity`` in 0..3, as released by Horng et al. 2021) supplies the
paper's downstream label; without it ``edema`` is ``-1``.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .data import ImageTextData

__all__ = ["CHEXPERT_FINDINGS", "find_labels", "load_mimic_cxr", "read_grayscale",
           "report_sentences"]

#: CheXpert-labeller columns, in the order of :attr:`ImageTextData.findings`.
CHEXPERT_FINDINGS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)

_SECTION = re.compile(r"^\s*([A-Z][A-Z /&]+):", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_LIST_NUMBER = re.compile(r"^\d+\.\s*")


def report_sentences(text: str, *, source: str = "report") -> list[str]:
    """The sentences of a report's FINDINGS and IMPRESSION sections.

    When neither section is present the whole text (minus other section headers) is used.

    Args:
        text: the raw report.
        source: a name for error messages (e.g. the file path).

    Returns:
        The non-empty sentences, in order.

    Raises:
        ValueError: if no sentence remains (an empty report).

    Example:
        >>> report_sentences("INDICATION: cough.\\nFINDINGS: Heart is normal. No effusion.\\n"
        ...                  "IMPRESSION: No acute process.")
        ['Heart is normal.', 'No effusion.', 'No acute process.']
    """
    heads = list(_SECTION.finditer(text))
    wanted = []
    for k, m in enumerate(heads):
        if m.group(1).strip() in ("FINDINGS", "IMPRESSION"):
            end = heads[k + 1].start() if k + 1 < len(heads) else len(text)
            wanted.append(text[m.end() : end])
    if not wanted:
        wanted = [_SECTION.sub(" ", text)] if not heads else [
            text[m.end() : (heads[k + 1].start() if k + 1 < len(heads) else len(text))]
            for k, m in enumerate(heads)
        ]
    sentences = []
    for section in wanted:
        flat = " ".join(section.split())
        for s in _SENTENCE_END.split(flat):
            s = _LIST_NUMBER.sub("", s.strip())
            if any(c.isalnum() for c in s):
                sentences.append(s)
    if not sentences:
        raise ValueError(f"empty report: no sentence found in {source}")
    return sentences


def read_grayscale(path: str | Path, size: int) -> Tensor:
    """Read an 8- or 16-bit image as float32 ``(1, size, size)`` in ``[0, 1]``.

    Pixel values are converted to float before any arithmetic (no uint8/uint16 overflow);
    colour images are converted to luminance; the image is centre-cropped to a square and
    resized with antialiasing.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.fromarray(np.full((10, 20), 65535, dtype=np.uint16)).save(p)
        >>> float(read_grayscale(p, 8).max())
        1.0
    """
    with Image.open(path) as im:
        if im.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
            im = im.convert("L")
        arr = np.asarray(im)
    if arr.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel image, got array shape {arr.shape}")
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype in (np.uint16, np.int32, np.int16, np.uint32) or np.issubdtype(
        arr.dtype, np.integer
    ):
        scale = 65535.0
    elif arr.dtype == np.bool_:
        scale = 1.0
    else:  # float images (mode "F") are taken as already in [0, 1]
        scale = 1.0
    img = torch.from_numpy(arr.astype(np.float32) / scale).clamp_(0, 1)
    h, w = img.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top : top + s, left : left + s]
    img = F.interpolate(img[None, None], size=(size, size), mode="bilinear",
                        antialias=s > size, align_corners=False)
    return img[0].clamp_(0, 1)


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))


def find_labels(root: Path) -> Path | None:
    """``root``'s CheXpert labels file (``mimic-cxr-2.0.0-chexpert.csv`` or ``.csv.gz``), or
    ``None``."""
    for name in ("mimic-cxr-2.0.0-chexpert.csv", "mimic-cxr-2.0.0-chexpert.csv.gz"):
        if (root / name).exists():
            return root / name
    return None


def load_mimic_cxr(
    root: str | Path,
    *,
    reports_root: str | Path | None = None,
    labels_csv: str | Path | None = None,
    edema_csv: str | Path | None = None,
    size: int = 64,
    limit: int | None = None,
    on_error: str = "raise",
) -> ImageTextData:
    """Load MIMIC-CXR-JPG images with their reports and labels.

    Args:
        root: the MIMIC-CXR-JPG folder (holding ``files/``).
        reports_root: the MIMIC-CXR reports folder (holding ``files/pXX/pN/sM.txt``);
            defaults to ``root``.
        labels_csv: CheXpert-labeller CSV; defaults to ``root/mimic-cxr-2.0.0-chexpert.csv``
            (or ``.csv.gz``) when present. Label 1 -> 1, 0 -> 0, uncertain (-1) and blank -> nan.
        edema_csv: optional CSV with ``subject_id, study_id, edema_severity`` (0..3).
        size: images are resized to ``size x size``.
        limit: load at most this many images (sorted path order).
        on_error: ``"raise"`` (default) or ``"skip"`` images without a usable report.

    Returns:
        An :class:`~examples.image_text.data.ImageTextData` (``sentence_sites`` all -1).

    Raises:
        FileNotFoundError: missing folder, no images, or an image whose report is missing.
        ValueError: an empty report, a bad ``on_error``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(root)
    files = root / "files"
    if not files.is_dir():
        raise FileNotFoundError(
            f"MIMIC-CXR-JPG folder not found: expected images under {files} "
            "(layout files/pXX/pXXXXXXXX/sXXXXXXXX/*.jpg)"
        )
    rep_root = Path(reports_root) if reports_root is not None else root
    if not (rep_root / "files").is_dir():
        raise FileNotFoundError(f"reports folder not found: expected {rep_root / 'files'}")
    paths = sorted(p for ext in ("*.jpg", "*.jpeg", "*.png") for p in files.glob(f"p*/p*/s*/{ext}"))
    if not paths:
        raise FileNotFoundError(f"no images found under {files}/pXX/pXXXXXXXX/sXXXXXXXX/")
    if limit is not None:
        paths = paths[:limit]

    label_rows: dict[tuple[int, int], dict[str, str]] = {}
    lpath = Path(labels_csv) if labels_csv is not None else find_labels(root)
    if lpath is not None:
        if not lpath.exists():
            raise FileNotFoundError(f"labels_csv not found: {lpath}")
        for row in _read_csv(lpath):
            label_rows[(int(row["subject_id"]), int(row["study_id"]))] = row
    severity: dict[tuple[int, int], int] = {}
    if edema_csv is not None:
        for row in _read_csv(Path(edema_csv)):
            severity[(int(row["subject_id"]), int(row["study_id"]))] = int(
                float(row["edema_severity"])
            )

    images, reports, edema, findings = [], [], [], []
    report_cache: dict[Path, list[str]] = {}
    for p in paths:
        study_dir = p.parent
        subject = int(study_dir.parent.name[1:])
        study = int(study_dir.name[1:])
        rel = study_dir.relative_to(files)
        rpath = rep_root / "files" / rel.parent / f"{study_dir.name}.txt"
        try:
            if rpath not in report_cache:
                if not rpath.exists():
                    raise FileNotFoundError(f"image {p} has no report: expected {rpath}")
                report_cache[rpath] = report_sentences(
                    rpath.read_text(encoding="utf-8", errors="replace"), source=str(rpath)
                )
        except (FileNotFoundError, ValueError):
            if on_error == "raise":
                raise
            continue
        images.append(read_grayscale(p, size))
        reports.append(report_cache[rpath])
        edema.append(severity.get((subject, study), -1))
        row = label_rows.get((subject, study))
        vals = []
        for name in CHEXPERT_FINDINGS:
            v = (row or {}).get(name, "")
            vals.append(float(v) if v not in ("", None) and float(v) >= 0 else float("nan"))
        findings.append(vals)
    if not images:
        raise FileNotFoundError(f"no image under {files} has a usable report")
    return ImageTextData(
        images=torch.stack(images),
        reports=reports,
        edema=torch.tensor(edema, dtype=torch.long),
        findings=torch.tensor(findings, dtype=torch.float32),
        finding_names=CHEXPERT_FINDINGS,
        sentence_sites=[[-1] * len(r) for r in reports],
    )
