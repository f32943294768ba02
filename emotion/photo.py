"""One photo in, every face's emotion out: the annotated picture and CSV/JSON of the results."""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .config import IMAGES_DIR
from .draw import annotate_photo
from .errors import SettingError
from .faces import DetectionSettings, crop
from .images import ImageError, MultiFrameWarning, decode_image, fit_side
from .recognizer import FACE_COLUMNS, EmotionRecognizer, Face

MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
PHOTO_TYPES = ("jpg", "jpeg", "png", "webp", "bmp")

NO_FACE_TIPS = (
    "Use a photo with good, even lighting: faces in shadow or against a bright window are missed.",
    (
        "Faces should look roughly at the camera; for faces turned aside, switch on 'Faces in "
        "profile too' under Detection settings."
    ),
    (
        "Faces should not be tiny: by default at least 4% of the photo's shorter side; lower "
        "'Minimum face size' under Detection settings for group photos."
    ),
    (
        "Lower 'Sensitivity' under Detection settings to accept less certain faces "
        "(more faces found, and more false ones)."
    ),
)


@dataclass
class PhotoResult:
    """The faces of one photo, the photo with boxes drawn on it, and the results as CSV and JSON."""

    name: str
    image: np.ndarray  # BGR, as decoded
    annotated: np.ndarray  # BGR
    faces: list[Face] = field(default_factory=list)
    model: str = ""
    notes: list[str] = field(default_factory=list)  # what the user should know (multi-frame files)

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def stem(self) -> str:
        return Path(self.name).stem or "photo"

    def annotated_rgb(self) -> np.ndarray:
        return cv2.cvtColor(self.annotated, cv2.COLOR_BGR2RGB)

    def face_rgb(self, index: int) -> np.ndarray:
        """The face's own pixels, for a thumbnail beside its scores."""
        return cv2.cvtColor(crop(self.image, self.faces[index].box), cv2.COLOR_BGR2RGB)

    def annotated_bytes(self, fmt: str = "png") -> bytes:
        """The annotated photo encoded as PNG or JPEG."""
        ext = {"png": ".png", "jpeg": ".jpg", "jpg": ".jpg"}.get(fmt.lower())
        if ext is None:
            raise ValueError(f"unknown image format {fmt!r}: expected png or jpeg")
        params = [cv2.IMWRITE_JPEG_QUALITY, 92] if ext == ".jpg" else []
        # A JPEG has at most 65,500 px a side: a wider picture's JPEG is scaled down to fit.
        image = fit_side(self.annotated) if ext == ".jpg" else self.annotated
        ok, buffer = cv2.imencode(ext, image, params)
        if not ok:
            raise ImageError(f"could not encode the annotated photo as {fmt}")
        return buffer.tobytes()

    @property
    def csv_text(self) -> str:
        """One row per face: position, top emotion, confidence and all seven probabilities."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["image", "face", *FACE_COLUMNS])
        writer.writerows([self.name, i, *face.to_row()] for i, face in enumerate(self.faces, 1))
        return out.getvalue()

    @property
    def json_text(self) -> str:
        return json.dumps(
            {
                "image": self.name,
                "width": self.width,
                "height": self.height,
                "model": self.model,
                "faces": [face.to_dict() for face in self.faces],
            },
            indent=2,
        )


def check_upload(name: str, size: int) -> None:
    """ImageError with what to do when an upload is too big or not a photo type we read."""
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix not in PHOTO_TYPES:
        raise ImageError(
            f"{name}: .{suffix or '?'} files are not supported; "
            f"upload a {', '.join(PHOTO_TYPES)} photo"
        )
    if size > MAX_UPLOAD_BYTES:
        raise ImageError(
            f"{name}: {size / 1024 / 1024:.1f} MB is over the {MAX_UPLOAD_MB} MB limit; "
            "export a smaller copy (a few megapixels are plenty for faces)"
        )


def analyse(
    data: bytes, name: str, recognizer: EmotionRecognizer, settings: DetectionSettings | None = None,
    tta: bool = True,
) -> PhotoResult:
    """Decode photo bytes, find each face and its emotion, and draw them; ImageError if bad.
    `tta`: average each face over the test-time views (`emotion.tta`)."""
    check_upload(name, len(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MultiFrameWarning)
        image = decode_image(data, name)
    # detect_faces runs on a copy at most settings.max_side wide and maps boxes back, so the
    # boxes (and crops) are in the full photo's pixels.
    faces = reading_order(recognizer.recognize(image, settings, tta=tta))
    return PhotoResult(name, image, annotate_photo(image, faces), faces, str(recognizer.model_path),
                       [str(w.message) for w in caught])


def reading_order(faces: list[Face]) -> list[Face]:
    """Faces as a person reads a group photo, row by row from the top, each row left to right:
    the order of the numbers drawn on the photo and of its results table.

    A face belongs to the row above when its centre is within half a face's height of that row's
    first face's centre (heads in a row are rarely exactly level).
    """
    rows: list[list[Face]] = []
    for face in sorted(faces, key=lambda f: f.box.y + f.box.h / 2):
        centre = face.box.y + face.box.h / 2
        if rows:
            first = rows[-1][0].box
            if abs(centre - (first.y + first.h / 2)) <= max(first.h, face.box.h) / 2:
                rows[-1].append(face)
                continue
        rows.append([face])
    return [face for row in rows for face in sorted(row, key=lambda f: f.box.x)]


def no_face_tips(result: PhotoResult, settings: DetectionSettings | None = None) -> list[str]:
    """The tips for a photo without a face, the size one is for this photo said in pixels."""
    settings = settings or DetectionSettings()
    fraction = settings.min_size_fraction
    smallest = max(settings.min_size_px, round(fraction * min(result.width, result.height)))
    size = (f"Faces should not be tiny: at least {fraction:.0%} of the photo's shorter side, "
            f"here {smallest} px high; lower 'Minimum face size' under Detection settings for "
            "group photos, or crop the photo around the faces.")
    return [size if tip.startswith("Faces should not be tiny") else tip for tip in NO_FACE_TIPS]


def detection_settings(min_face_percent: float = 4.0, sensitivity: int = 6,
                       profiles: bool = False) -> DetectionSettings:
    """Settings from the page's knobs: minimum face size (% of the shorter side), min_neighbors,
    and whether to look for faces in profile too."""
    if not 1 <= min_face_percent <= 50:
        raise SettingError("minimum face size must be between 1% and 50% of the photo's shorter side")
    if not 1 <= sensitivity <= 20:
        raise SettingError("sensitivity must be between 1 and 20")
    return DetectionSettings(
        min_neighbors=int(sensitivity), min_size_fraction=min_face_percent / 100,
        profiles=profiles,
    )


# The sample the Home page's "Try a sample photo" opens: many faces, so the numbers show.
FIRST_SAMPLE = "groups/synthetic-crowd.jpg"


def sample_photos(folder: Path = IMAGES_DIR) -> list[Path]:
    """The sample photos shipped in images/ and its groups/ folder: the real photos first, by name."""
    if not folder.is_dir():
        return []

    def photos(where: Path) -> list[Path]:
        if not where.is_dir():
            return []
        return sorted(p for p in where.iterdir() if p.suffix.lower().lstrip(".") in PHOTO_TYPES)

    return photos(folder) + photos(folder / "groups")


def sample_name(path: Path, folder: Path = IMAGES_DIR) -> str:
    """How a sample is named on the page: its path inside images/ ("groups/synthetic-crowd.jpg")."""
    try:
        return Path(path).relative_to(folder).as_posix()
    except ValueError:
        return Path(path).name
