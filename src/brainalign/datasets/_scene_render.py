"""Drawing procedural scenes with PIL: one glyph per category, event arrows, a two-tone background.

Every category has its own silhouette (so category is visible), filled with the object's colour
attribute and scaled by its size attribute; animate objects have a head on the side they face, so
the agent visibly faces its patient; the event is an arrow from agent to patient whose line style
names the action. Drawing uses integer pixel coordinates and no anti-aliasing: the same scene and
size always give the same bytes.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from brainalign.datasets._scene_vocab import COLOURS, SETTINGS, SIZES
from brainalign.errors import InputError

_OUTLINE = (20, 20, 20)
_OUTLINE_ON_DARK = (235, 235, 235)
_ARROW = (15, 15, 15)


class _Pen:
    """Maps glyph coordinates (unit box [-1, 1]², y down, facing +x) to pixels."""

    def __init__(self, draw, cx, cy, half, facing, fill, outline, width):
        self.draw, self.cx, self.cy, self.h = draw, cx, cy, half
        self.sx = 1.0 if facing >= 0 else -1.0
        self.fill, self.outline, self.width = fill, outline, width

    def pt(self, u, v):
        return (round(self.cx + self.sx * u * self.h), round(self.cy + v * self.h))

    def box(self, u0, v0, u1, v1):
        (x0, y0), (x1, y1) = self.pt(u0, v0), self.pt(u1, v1)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def ellipse(self, u0, v0, u1, v1, fill=None):
        self.draw.ellipse(
            self.box(u0, v0, u1, v1),
            fill=self.fill if fill is None else fill,
            outline=self.outline,
            width=self.width,
        )

    def circle(self, u, v, r, fill=None):
        self.ellipse(u - r, v - r, u + r, v + r, fill=fill)

    def rect(self, u0, v0, u1, v1, fill=None):
        self.draw.rectangle(
            self.box(u0, v0, u1, v1),
            fill=self.fill if fill is None else fill,
            outline=self.outline,
            width=self.width,
        )

    def poly(self, pts, fill=None):
        self.draw.polygon(
            [self.pt(u, v) for u, v in pts],
            fill=self.fill if fill is None else fill,
            outline=self.outline,
            width=self.width,
        )

    def line(self, pts, width=None, fill=None):
        self.draw.line(
            [self.pt(u, v) for u, v in pts],
            fill=self.outline if fill is None else fill,
            width=self.width if width is None else width,
        )

    def eye(self, u, v):
        r = 0.06
        self.draw.ellipse(self.box(u - r, v - r, u + r, v + r), fill=self.outline)


def _person(p):
    p.line([(-0.15, 0.35), (-0.3, 1.0)], width=p.width * 3)
    p.line([(0.15, 0.35), (0.3, 1.0)], width=p.width * 3)
    p.rect(-0.3, -0.4, 0.3, 0.4)
    p.line([(0.3, -0.3), (0.75, 0.05)], width=p.width * 3)
    p.line([(-0.3, -0.3), (-0.6, 0.15)], width=p.width * 3)
    p.circle(0.05, -0.68, 0.27, fill=(240, 200, 160))
    p.poly([(0.3, -0.72), (0.45, -0.64), (0.3, -0.58)], fill=(240, 200, 160))
    p.eye(0.15, -0.72)


def _quadruped_legs(p, x0, x1, top, bottom, thick):
    for u in (x0, x0 + 0.2, x1 - 0.2, x1):
        p.rect(u - thick, top, u + thick, bottom)


def _dog(p):
    _quadruped_legs(p, -0.6, 0.35, 0.1, 0.75, 0.07)
    p.line([(-0.75, -0.05), (-1.0, -0.45)], width=p.width * 3)
    p.ellipse(-0.85, -0.3, 0.55, 0.3)
    p.circle(0.65, -0.35, 0.28)
    p.poly([(0.4, -0.55), (0.5, -0.85), (0.65, -0.6)])
    p.ellipse(0.8, -0.38, 1.0, -0.22, fill=_OUTLINE)
    p.eye(0.7, -0.45)


def _cat(p):
    _quadruped_legs(p, -0.45, 0.25, 0.15, 0.7, 0.06)
    p.line([(-0.6, 0.05), (-0.9, -0.3), (-0.8, -0.7)], width=p.width * 3)
    p.ellipse(-0.65, -0.2, 0.4, 0.35)
    p.circle(0.55, -0.3, 0.3)
    p.poly([(0.3, -0.45), (0.33, -0.85), (0.52, -0.58)])
    p.poly([(0.62, -0.58), (0.8, -0.85), (0.82, -0.45)])
    p.line([(0.78, -0.22), (1.0, -0.25)], width=max(1, p.width))
    p.line([(0.78, -0.16), (1.0, -0.1)], width=max(1, p.width))
    p.eye(0.63, -0.35)


def _horse(p):
    _quadruped_legs(p, -0.65, 0.4, 0.05, 0.95, 0.06)
    p.line([(-0.8, -0.1), (-1.0, 0.35)], width=p.width * 4)
    p.ellipse(-0.85, -0.3, 0.6, 0.25)
    p.poly([(0.3, -0.2), (0.55, -0.85), (0.75, -0.75), (0.6, -0.1)])
    p.poly([(0.55, -0.9), (1.0, -0.65), (0.95, -0.5), (0.6, -0.6)])
    p.eye(0.7, -0.75)


def _cow(p):
    _quadruped_legs(p, -0.6, 0.4, 0.1, 0.8, 0.08)
    p.rect(-0.8, -0.35, 0.55, 0.25)
    p.ellipse(-0.5, -0.25, -0.2, 0.05, fill=_OUTLINE)
    p.ellipse(0.05, -0.1, 0.35, 0.15, fill=_OUTLINE)
    p.rect(0.5, -0.6, 0.95, -0.05)
    p.line([(0.55, -0.6), (0.45, -0.85)], width=p.width * 2)
    p.line([(0.9, -0.6), (1.0, -0.85)], width=p.width * 2)
    p.eye(0.8, -0.4)


def _sheep(p):
    p.rect(-0.45, 0.2, -0.3, 0.75, fill=_OUTLINE)
    p.rect(0.2, 0.2, 0.35, 0.75, fill=_OUTLINE)
    for u, v in (
        (-0.5, -0.1),
        (-0.15, -0.3),
        (0.2, -0.1),
        (-0.15, 0.15),
        (-0.55, 0.2),
        (0.25, 0.2),
    ):
        p.circle(u, v, 0.3)
    p.ellipse(0.45, -0.45, 0.95, 0.0, fill=(40, 40, 40))
    p.eye(0.8, -0.3)


def _bird(p):
    p.ellipse(-0.7, -0.3, 0.5, 0.35)
    p.poly([(-0.6, 0.0), (-1.0, -0.25), (-0.95, 0.25)])
    p.poly([(-0.3, -0.1), (0.1, -0.95), (0.25, -0.05)])
    p.circle(0.55, -0.25, 0.25)
    p.poly([(0.75, -0.35), (1.0, -0.2), (0.75, -0.1)], fill=(250, 170, 20))
    p.eye(0.6, -0.3)


def _elephant(p):
    _quadruped_legs(p, -0.6, 0.3, 0.1, 0.9, 0.11)
    p.ellipse(-0.9, -0.55, 0.55, 0.4)
    p.poly([(0.65, -0.2), (0.95, 0.2), (0.9, 0.75), (0.78, 0.75), (0.8, 0.25), (0.55, 0.0)])
    p.circle(0.55, -0.4, 0.33)
    p.ellipse(0.2, -0.6, 0.55, 0.1)
    p.eye(0.72, -0.5)


def _car(p):
    p.poly([(-0.5, -0.1), (-0.3, -0.55), (0.35, -0.55), (0.55, -0.1)])
    p.rect(-0.95, -0.15, 0.95, 0.35)
    p.rect(-0.15, -0.45, 0.2, -0.15, fill=(190, 220, 240))
    p.circle(-0.55, 0.4, 0.22, fill=(30, 30, 30))
    p.circle(0.55, 0.4, 0.22, fill=(30, 30, 30))


def _truck(p):
    p.rect(-1.0, -0.7, 0.35, 0.35)
    p.rect(0.35, -0.3, 0.95, 0.35)
    p.rect(0.55, -0.2, 0.85, 0.0, fill=(190, 220, 240))
    for u in (-0.7, -0.25, 0.65):
        p.circle(u, 0.45, 0.2, fill=(30, 30, 30))


def _bicycle(p):
    w = p.width * 3
    for u in (-0.55, 0.55):
        p.draw.ellipse(p.box(u - 0.42, -0.02, u + 0.42, 0.82), outline=p.fill, width=w)
    p.line(
        [(-0.55, 0.4), (-0.1, -0.3), (0.4, -0.3), (0.0, 0.4), (-0.55, 0.4)], width=w, fill=p.fill
    )
    p.line([(0.55, 0.4), (0.4, -0.5)], width=w, fill=p.fill)
    p.line([(0.3, -0.5), (0.55, -0.5)], width=w, fill=p.outline)


def _ball(p):
    p.circle(0.0, 0.35, 0.6)
    p.draw.arc(p.box(-0.45, -0.1, 0.45, 0.8), 200, 340, fill=p.outline, width=p.width)
    p.draw.arc(p.box(-0.45, -0.1, 0.45, 0.8), 20, 160, fill=p.outline, width=p.width)


def _chair(p):
    p.rect(-0.55, -0.9, -0.35, 0.2)
    p.rect(-0.55, 0.0, 0.55, 0.2)
    p.rect(-0.5, 0.2, -0.38, 0.9)
    p.rect(0.38, 0.2, 0.5, 0.9)


def _table(p):
    p.rect(-0.95, -0.2, 0.95, 0.05)
    p.rect(-0.8, 0.05, -0.65, 0.85)
    p.rect(0.65, 0.05, 0.8, 0.85)


def _bench(p):
    p.rect(-1.0, -0.45, 1.0, -0.3)
    p.rect(-1.0, -0.15, 1.0, 0.0)
    p.rect(-1.0, 0.15, 1.0, 0.3)
    p.rect(-0.85, 0.3, -0.7, 0.85, fill=(60, 60, 60))
    p.rect(0.7, 0.3, 0.85, 0.85, fill=(60, 60, 60))


def _tree(p):
    p.rect(-0.15, 0.1, 0.15, 1.0, fill=(110, 70, 35))
    p.circle(0.0, -0.35, 0.6)
    p.circle(-0.4, -0.05, 0.35)
    p.circle(0.4, -0.05, 0.35)


def _umbrella(p):
    p.line([(0.0, -0.4), (0.0, 0.8), (-0.2, 0.95)], width=p.width * 2)
    p.draw.pieslice(
        p.box(-1.0, -1.0, 1.0, 0.2), 180, 360, fill=p.fill, outline=p.outline, width=p.width
    )


def _kite(p):
    p.line([(0.0, 0.6), (-0.2, 0.8), (0.1, 0.95), (-0.1, 1.0)], width=p.width)
    p.poly([(0.0, -0.95), (0.6, -0.2), (0.0, 0.6), (-0.6, -0.2)])
    p.line([(0.0, -0.95), (0.0, 0.6)], width=p.width)
    p.line([(-0.6, -0.2), (0.6, -0.2)], width=p.width)


GLYPHS = {
    "person": _person,
    "dog": _dog,
    "cat": _cat,
    "horse": _horse,
    "cow": _cow,
    "sheep": _sheep,
    "bird": _bird,
    "elephant": _elephant,
    "car": _car,
    "truck": _truck,
    "bicycle": _bicycle,
    "ball": _ball,
    "chair": _chair,
    "table": _table,
    "bench": _bench,
    "tree": _tree,
    "umbrella": _umbrella,
    "kite": _kite,
}


def object_radius(obj: dict) -> float:
    """Half-width of an object's box, as a fraction of the image side."""
    return SIZES[obj["size"]]


def _dash(draw, p0, p1, on, off, width):
    length = math.dist(p0, p1)
    if length == 0:
        return
    ux, uy = (p1[0] - p0[0]) / length, (p1[1] - p0[1]) / length
    t = 0.0
    while t < length:
        t1 = min(t + on, length)
        draw.line(
            [(p0[0] + ux * t, p0[1] + uy * t), (p0[0] + ux * t1, p0[1] + uy * t1)],
            fill=_ARROW,
            width=width,
        )
        t = t1 + off


def _head(draw, tip, ux, uy, size, filled=True):
    nx, ny = -uy, ux
    base = (tip[0] - ux * size, tip[1] - uy * size)
    pts = [
        tip,
        (base[0] + nx * size * 0.6, base[1] + ny * size * 0.6),
        (base[0] - nx * size * 0.6, base[1] - ny * size * 0.6),
    ]
    pts = [(round(x), round(y)) for x, y in pts]
    if filled:
        draw.polygon(pts, fill=_ARROW)
    else:
        draw.polygon(pts, outline=_ARROW, width=max(1, round(size / 6)))


def _draw_event(draw, scene, event, size):
    """An arrow from agent to patient; its line style names the action."""
    a = scene["objects"][event["agent"]]
    b = scene["objects"][event["patient"]]
    p0 = np.array([a["x"], a["y"]]) * size
    p1 = np.array([b["x"], b["y"]]) * size
    d = p1 - p0
    length = float(np.hypot(*d))
    if length < 1e-6:
        return
    u = d / length
    start = p0 + u * (object_radius(a) * size * 1.05)
    end = p1 - u * (object_radius(b) * size * 1.05)
    if float(np.dot(end - start, u)) <= 0:
        start, end = p0 + u * length * 0.35, p0 + u * length * 0.65
    w = max(1, round(size / 110))
    head = max(4.0, size / 28)
    s, e = tuple(start), tuple(end)
    action = event["action"]
    if action == "chase":
        draw.line([s, e], fill=_ARROW, width=w)
        _head(draw, e, u[0], u[1], head)
        _head(draw, tuple(end - u * head * 0.8), u[0], u[1], head)
    elif action == "push":
        draw.line([s, e], fill=_ARROW, width=w * 3)
        nx, ny = -u[1] * head, u[0] * head
        draw.line([(e[0] + nx, e[1] + ny), (e[0] - nx, e[1] - ny)], fill=_ARROW, width=w * 3)
    elif action == "watch":
        _dash(draw, s, e, w, w * 3, w)
        _head(draw, e, u[0], u[1], head, filled=False)
    elif action == "follow":
        _dash(draw, s, e, head, head * 0.6, w)
        _head(draw, e, u[0], u[1], head)
    elif action == "kick":
        n = np.array([-u[1], u[0]])
        pts = [
            start + (end - start) * t + n * (head * 0.5 if k % 2 else -head * 0.5)
            for k, t in enumerate(np.linspace(0.0, 1.0, 9))
        ]
        pts[0], pts[-1] = start, end
        draw.line([tuple(q) for q in pts], fill=_ARROW, width=w)
        for ang in range(0, 360, 45):
            r = math.radians(ang)
            draw.line(
                [e, (e[0] + math.cos(r) * head, e[1] + math.sin(r) * head)], fill=_ARROW, width=w
            )
    elif action == "jump over":
        lift = max(length * 0.35, head * 2)
        ts = np.linspace(0.0, 1.0, 17)
        pts = [start + (end - start) * t + np.array([0.0, -4 * lift * t * (1 - t)]) for t in ts]
        draw.line([tuple(q) for q in pts], fill=_ARROW, width=w)
        tail = pts[-1] - pts[-2]
        tail = tail / max(float(np.hypot(*tail)), 1e-6)
        _head(draw, e, tail[0], tail[1], head)
    else:
        raise InputError(f"scene event: unknown action {action!r}")


def render_scene(scene: dict, size: int = 425) -> np.ndarray:
    """Draw one procedural scene.

    Parameters
    ----------
    scene : dict
        A scene description from :func:`brainalign.datasets.make_scenes` (``setting``,
        ``horizon``, ``objects`` with category/colour/size/x/y/facing, ``events``).
    size : int
        Side of the square image in pixels.

    Returns
    -------
    image : (size, size, 3) uint8
    """
    if int(size) < 8:
        raise InputError(f"size: expected an image side of at least 8 pixels, got {size}")
    size = int(size)
    try:
        sky, ground = SETTINGS[scene["setting"]]
        horizon = round(float(scene["horizon"]) * size)
        objects = scene["objects"]
    except (KeyError, TypeError) as exc:
        raise InputError(
            f"scene: expected a procedural scene dict with 'setting', 'horizon' and 'objects' "
            f"(as made by make_scenes), got keys {sorted(scene) if isinstance(scene, dict) else type(scene).__name__}"
        ) from exc
    img = Image.new("RGB", (size, size), sky)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, horizon, size, size), fill=ground)
    width = max(1, round(size / 200))
    # Far (higher) objects first so nearer ones overlap them, as in a photograph.
    for k in sorted(range(len(objects)), key=lambda i: (objects[i]["y"], i)):
        obj = objects[k]
        fill = COLOURS[obj["colour"]]
        outline = _OUTLINE_ON_DARK if obj["colour"] == "black" else _OUTLINE
        pen = _Pen(
            draw,
            obj["x"] * size,
            obj["y"] * size,
            object_radius(obj) * size,
            obj.get("facing", 1),
            fill,
            outline,
            width,
        )
        GLYPHS[obj["category"]](pen)
    for event in scene.get("events", []):
        _draw_event(draw, scene, event, size)
    return np.asarray(img, dtype=np.uint8)
