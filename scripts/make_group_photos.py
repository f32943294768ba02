"""Build the face-detection test set in images/groups/ from free photos that ship offline.

Real group photos with a clear free licence could not be found in any package that can be
installed here (see images/groups/README.md), so the set is:

* real photos: the repo's astronaut photos (NASA, public domain) and scikit-image's
  "camera" (CC0, a man in near profile in a dark coat), copied as `cameraman.jpg`;
* synthetic group photos, `synthetic-*.jpg`: heads cut from those two photos, pasted on
  CC0/public-domain backgrounds from scikit-image at several sizes, with cap shadows, dimmed
  or backlit lighting, in-plane tilts, a crude perspective "turn", mirrored copies, and dark
  fabric patches (the cameraman's coat, the astronaut's black helmet) as false-positive bait.

Ground truth for the synthetic faces follows from where they were pasted; the real photos'
boxes were drawn by hand. Both are written to images/groups/faces.json (file -> [[x, y, w, h]]),
keys relative to images/groups/. Deterministic: rerunning rewrites the same files.

    python scripts/make_group_photos.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "images" / "groups"

# Hand-drawn boxes for the real photos (checked by drawing them on the image and looking).
REAL_TRUTH = {
    "../astronaut.jpg": [[176, 64, 96, 98]],
    "../astronaut-pair.jpg": [[177, 64, 96, 98], [751, 64, 96, 98]],
    "cameraman.jpg": [[182, 104, 84, 92]],
}


@dataclass(frozen=True)
class Head:
    """A head-and-shoulders crop and the face box inside it."""

    image: np.ndarray  # BGR
    face: tuple[int, int, int, int]


def sources() -> dict[str, Head]:
    astro = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR)
    # Crops (x0, y0, x1, y1) around the face, with hair and some clothes.
    a = astro[10:300, 110:340]
    c = camera[55:330, 95:345]
    heads = {
        "astronaut": Head(a, (177 - 110, 67 - 10, 93, 93)),
        "cameraman": Head(c, (182 - 95, 104 - 55, 84, 92)),
    }
    for name, head in list(heads.items()):
        x, y, w, h = head.face
        width = head.image.shape[1]
        heads[name + "-mirrored"] = Head(np.ascontiguousarray(head.image[:, ::-1]),
                                         (width - x - w, y, w, h))
    return heads


def fabric() -> dict[str, np.ndarray]:
    """Dark textures from the same free photos: what dark clothes look like to a cascade."""
    astro = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    camera = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR)
    gravel = cv2.cvtColor(skimage.data.gravel(), cv2.COLOR_GRAY2BGR)
    return {
        "coat": camera[200:512, 0:240],
        "helmet": astro[330:512, 270:512],
        "neck": astro[150:300, 110:310],
        "dark-gravel": (gravel[:300, :300].astype(np.float32) * 0.35).astype(np.uint8),
    }


def backgrounds() -> dict[str, np.ndarray]:
    def gray(image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)

    return {
        "coffee": cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR),
        "rocket": cv2.cvtColor(skimage.data.rocket(), cv2.COLOR_RGB2BGR),
        "brick": gray(skimage.data.brick()),
        "grass": gray(skimage.data.grass()),
        "chelsea": cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR),
    }


# --- what can happen to a head -------------------------------------------------------------

def cap_shadow(img: np.ndarray, face, strength: float, brim: bool) -> np.ndarray:
    """Darken everything above the middle of the face, as the shade of a cap's peak does."""
    x, y, w, h = face
    out = img.astype(np.float32)
    edge = y + 0.45 * h
    rows = np.arange(img.shape[0], dtype=np.float32)
    ramp = np.clip((edge - rows) / (0.12 * h) + 0.5, 0, 1)  # 1 above the edge, 0 below
    factor = 1 - (1 - strength) * ramp
    out *= factor[:, None, None]
    if brim:  # the peak itself: a dark band across the forehead and a crown above it
        cv2.ellipse(out, (int(x + w / 2), int(y + 0.12 * h)), (int(0.75 * w), int(0.1 * h)),
                    0, 0, 360, (40, 35, 60), -1)
        cv2.rectangle(out, (int(x + 0.05 * w), 0), (int(x + 0.95 * w), int(y + 0.1 * h)),
                      (45, 40, 70), -1)
    return np.clip(out, 0, 255).astype(np.uint8)


def lighting(img: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    out = (img.astype(np.float32) / 255.0) ** gamma * gain
    return np.clip(out * 255, 0, 255).astype(np.uint8)


def turn(img: np.ndarray, face, amount: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A crude head turn: squeeze the far half of the face (perspective), amount 0..0.4."""
    h, w = img.shape[:2]
    x, y, fw, fh = face
    cx = x + fw / 2
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    shrink = amount * h / 2
    # right side recedes: shorter and pulled toward the centre of the face
    dst = np.float32([[0, 0], [w - amount * (w - cx), shrink],
                      [w - amount * (w - cx), h - shrink], [0, h]])
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    corners = np.float32([[x, y], [x + fw, y], [x + fw, y + fh], [x, y + fh]]).reshape(-1, 1, 2)
    moved = cv2.perspectiveTransform(corners, m).reshape(-1, 2)
    x0, y0 = moved.min(axis=0)
    x1, y1 = moved.max(axis=0)
    # keep the box square-ish, as annotators (and the cascades) draw faces
    side = max(x1 - x0, 0.9 * (y1 - y0))
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    return out, (round(mx - side / 2), round(my - side / 2), round(side), round(side))


def tilt(img: np.ndarray, face, degrees: float) -> np.ndarray:
    """Rotate about the face's centre; the face box stays where it was."""
    x, y, w, h = face
    m = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class Placement:
    head: str
    x: int  # where the face's left edge goes on the canvas
    y: int
    face_px: int  # face width on the canvas
    shadow: float = 1.0  # <1: cap shadow of this brightness
    brim: bool = False
    gain: float = 1.0
    gamma: float = 1.0
    tilt: float = 0.0
    turn: float = 0.0


def paste(canvas: np.ndarray, heads: dict[str, Head], p: Placement) -> list[int]:
    head = heads[p.head]
    img, face = head.image, head.face
    if p.turn:
        img, face = turn(img, face, p.turn)
    if p.tilt:
        img = tilt(img, face, p.tilt)
    if p.shadow < 1.0:
        img = cap_shadow(img, face, p.shadow, p.brim)
    if p.gain != 1.0 or p.gamma != 1.0:
        img = lighting(img, p.gain, p.gamma)
    s = p.face_px / face[2]
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    fx, fy, fw, fh = (round(v * s) for v in face)
    ox, oy = p.x - fx, p.y - fy
    h, w = img.shape[:2]
    # feathered ellipse so the crop's edges are not hard lines
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.47), int(h * 0.49)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(2.0, 0.04 * w))[:, :, None]
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(W, ox + w), min(H, oy + h)
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    part = img[y0 - oy:y1 - oy, x0 - ox:x1 - ox].astype(np.float32)
    m = mask[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    canvas[y0:y1, x0:x1] = (part * m + region * (1 - m)).astype(np.uint8)
    return [p.x, p.y, fw, fh]


def lay_fabric(canvas: np.ndarray, texture: np.ndarray, x: int, y: int, width: int) -> None:
    s = width / texture.shape[1]
    t = cv2.resize(texture, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    H, W = canvas.shape[:2]
    h, w = t.shape[:2]
    h, w = min(h, H - y), min(w, W - x)
    canvas[y:y + h, x:x + w] = t[:h, :w]


def background(name: str, size=(1200, 720)) -> np.ndarray:
    return cv2.resize(backgrounds()[name], size, interpolation=cv2.INTER_LINEAR)


P = Placement
SCENES = {
    # A row of people, frontal, various sizes; two under cap shadows; dark coats below.
    "synthetic-row-caps": ("coffee", [
        P("astronaut", 60, 160, 110),
        P("astronaut-mirrored", 330, 180, 95, shadow=0.35, brim=True),
        P("astronaut", 560, 150, 120, shadow=0.45),
        P("astronaut-mirrored", 820, 200, 80, gain=0.8),
        P("astronaut", 1030, 170, 70, shadow=0.3, brim=True),
    ], [("coat", 0, 450, 300), ("coat", 420, 470, 260), ("helmet", 760, 470, 300)]),
    # Faces turned a little (perspective), plus the real profile both ways.
    "synthetic-turned": ("brick", [
        P("astronaut", 80, 120, 110, turn=0.25),
        P("astronaut-mirrored", 340, 140, 100, turn=0.35),
        P("cameraman", 600, 110, 110),
        P("cameraman-mirrored", 880, 150, 100),
        P("astronaut", 500, 420, 90, turn=0.15, tilt=8),
    ], [("dark-gravel", 0, 560, 400), ("coat", 860, 420, 260)]),
    # Tilted heads and dim/backlit light.
    "synthetic-tilt-dim": ("rocket", [
        P("astronaut", 90, 150, 100, tilt=15),
        P("astronaut-mirrored", 330, 160, 100, tilt=-20),
        P("astronaut", 580, 140, 110, gain=0.45, gamma=1.4),
        P("astronaut-mirrored", 830, 170, 90, gain=0.55, tilt=10),
        P("cameraman", 1010, 120, 85, gain=0.7),
    ], [("neck", 0, 480, 280), ("coat", 600, 460, 240), ("helmet", 900, 470, 300)]),
    # Small faces of a crowd at the back, two larger in front, mixed hardships.
    "synthetic-crowd": ("grass", [
        P("astronaut", 40, 60, 52),
        P("astronaut-mirrored", 180, 70, 48, shadow=0.4, brim=True),
        P("cameraman-mirrored", 320, 55, 55),
        P("astronaut", 470, 65, 50, tilt=-12),
        P("astronaut-mirrored", 610, 60, 54, gain=0.6),
        P("cameraman", 760, 62, 50),
        P("astronaut", 900, 70, 50, turn=0.3),
        P("astronaut", 1050, 65, 52),
        P("astronaut-mirrored", 200, 330, 130, shadow=0.4, brim=True),
        P("astronaut", 760, 320, 140, turn=0.2, gain=0.8),
    ], [("coat", 0, 540, 200), ("helmet", 460, 520, 250), ("dark-gravel", 1000, 520, 200)]),
    # No faces at all: only backgrounds and dark clothes, to count false alarms.
    "synthetic-no-faces": ("chelsea", [], [
        ("coat", 0, 100, 380), ("helmet", 400, 300, 380), ("neck", 820, 200, 380),
        ("dark-gravel", 400, 0, 300)]),
}


def build() -> dict[str, list[list[int]]]:
    OUT.mkdir(parents=True, exist_ok=True)
    heads, fabrics = sources(), fabric()
    truth: dict[str, list[list[int]]] = {}
    cv2.imwrite(str(OUT / "cameraman.jpg"), cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    truth.update(REAL_TRUTH)
    for name, (bg, placements, fabrics_at) in SCENES.items():
        canvas = background(bg)
        for tex, x, y, width in fabrics_at:
            lay_fabric(canvas, fabrics[tex], x, y, width)
        truth[name + ".jpg"] = [paste(canvas, heads, p) for p in placements]
        cv2.imwrite(str(OUT / f"{name}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 88])
    (OUT / "faces.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


if __name__ == "__main__":
    for name, boxes in build().items():
        print(f"{name}: {len(boxes)} faces")
