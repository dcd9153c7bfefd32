"""Paint a graph scene with matplotlib (Agg for PNG, its SVG and PDF backends).

Each call builds its own ``Figure`` (no pyplot, no shared figure, nothing
cached between requests) at 72 dpi, so a layout pixel is a PNG pixel and an
SVG/PDF point. The layout already computed every position, so the painter
adds plain artists in figure pixels: no Axes, no tick machinery.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, tzinfo

import matplotlib
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import FigureCanvasPdf
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.transforms import Affine2D, Bbox, Transform
from PIL import Image, ImageDraw

from render.graphs.fonts import DPI
from render.graphs.layout import layout_graph
from render.graphs.options import GraphOptionError, GraphOptions
from render.graphs.pie import PieOptions, Slice, layout_pie
from render.graphs.scene import Box, Fill, Item, Polyline, Scene, Segments, Text
from render.series import Series

#: zlib level for PNGs: 3 is about twice as fast as Pillow's default 6 for ~10% more bytes.
PNG_COMPRESS_LEVEL = 3
#: Content types graphite-web answers with for each image format.
CONTENT_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/x-pdf"}


def _dashes(dash: float | None, width: float) -> dict:
    """Line2D dash arguments for cairo's ``set_dash([dash], 1)`` (dash on, dash off, in pixels).

    matplotlib scales dash patterns by the line width; undo that so the
    length stays in pixels as in graphite.
    """
    if not dash or width <= 0:
        return {"linestyle": "solid"}
    unit = dash / max(width, 1e-3)
    return {"linestyle": (1.0 / max(width, 1e-3), (unit, unit))}


class _PlacedText(Artist):
    """Text the layout already measured and placed: drawn straight at its baseline.

    matplotlib's own ``Text`` measures every string again (and a reference
    string) on each draw to align it; text is most of a graph's cost, and the
    layout knows the widths already.
    """

    def __init__(self, item: Text, height: int) -> None:
        super().__init__()
        self.item = item
        self.height = height

    def draw(self, renderer) -> None:
        item = self.item
        x, y = item.start
        gc = renderer.new_gc()
        gc.set_foreground(item.color, isRGBA=True)
        if not renderer.flipy():
            y = self.height - y
        renderer.draw_text(gc, x, y, item.text, item.face.properties, item.rotation)
        gc.restore()


def _artist(item: Item, flip: Transform, clip: Bbox | None, height: int) -> Artist:
    if isinstance(item, Text):
        return _PlacedText(item, height)
    if isinstance(item, Box):
        if item.fill:
            return Rectangle(
                (item.x, item.y), item.width, item.height, facecolor=item.color,
                edgecolor="none", linewidth=0, transform=flip,
            )  # fmt: skip
        return Rectangle(
            (item.x, item.y), item.width, item.height, fill=False, edgecolor=item.color,
            linewidth=item.line_width, transform=flip,
        )  # fmt: skip
    if isinstance(item, Polyline):
        line = Line2D(
            item.xs, item.ys, color=item.color, linewidth=item.width, transform=flip,
            solid_capstyle="butt", solid_joinstyle="miter", dash_capstyle="butt",
            **_dashes(item.dash, item.width),
        )  # fmt: skip
        line.set_clip_box(clip)
        return line
    if isinstance(item, Segments):
        lines = LineCollection(
            item.segments, colors=[item.color], linewidths=item.width, transform=flip,
            capstyle="butt", snap=True if item.clip else None,
            **_dashes(item.dash, item.width),
        )  # fmt: skip
        if item.clip:
            lines.set_clip_box(clip)
        return lines
    if isinstance(item, Fill):
        polygons = PolyCollection(
            item.polygons, facecolors=[item.color], edgecolors="none", linewidths=0,
            transform=flip,
        )  # fmt: skip
        polygons.set_clip_box(clip)
        return polygons
    raise TypeError(f"cannot paint item={item!r}: unknown primitive")


def _figure(scene: Scene, with_text: bool) -> Figure:
    figure = Figure(figsize=(scene.width / DPI, scene.height / DPI), dpi=DPI)
    figure.patch.set_facecolor(scene.background)
    flip = Affine2D().scale(1.0, -1.0).translate(0.0, scene.height)
    clip = None
    if scene.area is not None:
        area = scene.area
        clip = Bbox.from_extents(
            area.left, scene.height - area.bottom, area.right, scene.height - area.top
        )
    for order, item in enumerate(scene.items):
        if isinstance(item, Text) and not with_text:
            continue
        artist = _artist(item, flip, clip, scene.height)
        artist.set_zorder(order)
        figure.add_artist(artist, clip=False)
    return figure


def _stamp(image: Image.Image, item: Text) -> None:
    """Draw one text item onto the image with Pillow (antialiased, at its baseline start)."""
    font = item.face.font
    left, top, right, bottom = font.getbbox(item.text, anchor="ls")
    if right <= left or bottom <= top:
        return
    mask = Image.new("L", (right - left, bottom - top))
    ImageDraw.Draw(mask).text((-left, -top), item.text, font=font, fill=255, anchor="ls")
    x, y = item.start
    if item.rotation == 90:
        mask = mask.transpose(Image.Transpose.ROTATE_90)
        corner = (x + top, y - right)
    elif item.rotation == -90:
        mask = mask.transpose(Image.Transpose.ROTATE_270)
        corner = (x - bottom, y + left)
    elif item.rotation:
        # about the text's centre: where it lands once turned counter-clockwise (y grows down)
        angle = math.radians(item.rotation)
        cx, cy = (left + right) / 2, (top + bottom) / 2
        centre = (x + cx * math.cos(angle) + cy * math.sin(angle), y - cx * math.sin(angle) + cy * math.cos(angle))
        mask = mask.rotate(item.rotation, resample=Image.Resampling.BICUBIC, expand=True)
        corner = (centre[0] - mask.width / 2, centre[1] - mask.height / 2)
    else:
        corner = (x + left, y + top)
    red, green, blue, alpha = (round(c * 255) for c in item.color)
    if alpha < 255:
        mask = mask.point(lambda v: v * alpha // 255)
    image.paste((red, green, blue, 255), (round(corner[0]), round(corner[1])), mask)


def _png(scene: Scene) -> bytes:
    """Shapes with matplotlib's Agg, then text with Pillow, encoded by Pillow.

    Text never overlaps the clipped series in a graphite layout (titles,
    labels and legend sit outside the plot area), so drawing it last keeps
    the scene's order.
    """
    canvas = FigureCanvasAgg(_figure(scene, with_text=False))
    canvas.draw()
    image = Image.frombuffer(
        "RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw", "RGBA", 0, 1
    )
    image = image.copy()
    for item in scene.texts():
        _stamp(image, item)
    if scene.background[3] >= 1.0:
        image = image.convert("RGB")  # opaque: a quarter less to compress
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def paint(scene: Scene, fmt: str) -> bytes:
    """The scene encoded as ``png``, ``svg`` or ``pdf`` bytes."""
    if fmt == "png":
        return _png(scene)
    figure = _figure(scene, with_text=True)
    buffer = io.BytesIO()
    if fmt == "pdf":
        FigureCanvasPdf(figure).print_pdf(
            buffer, metadata={"Creator": "Carbyne", "CreationDate": None}
        )
        return buffer.getvalue()
    # Real <text> elements (searchable, selectable) rather than glyph outlines.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "carbyne"}):
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": "Carbyne"})
    # graphite declares the SVG size in pixels, not points, and ends with its metadata script.
    head, sep, rest = buffer.getvalue().partition(b"<svg ")
    start, close, tail = rest.partition(b">")
    start = start.replace(b'pt"', b'px"', 2)
    body, end_tag, after = tail.rpartition(b"</svg>")
    metadata = json.dumps(scene.metadata).replace("]]>", "]]\\u003e")
    script = f"<script>\n  <![CDATA[\n    metadata = {metadata}\n  ]]>\n</script>\n"
    return head + sep + start + close + body + script.encode() + end_tag + after


def render_graph(
    series_list: Sequence[Series],
    params: Mapping[str, str],
    fmt: str,
    start: int,
    end: int,
    tz: tzinfo | None,
) -> tuple[bytes, str]:
    """A graphite-style line graph of ``series_list``: ``(body, content type)``.

    ``params`` are the request's parameters (graph options are read from it,
    everything else ignored); ``fmt`` is ``png``, ``svg`` or ``pdf``;
    ``start``/``end`` the request's window (graphite refuses an empty one);
    ``tz`` the zone for time labels (UTC when None). Like graphite, the x axis
    spans the series' own times. Raises :class:`GraphOptionError` for a bad
    parameter, format or window.
    """
    fmt = fmt.lower()
    if fmt not in CONTENT_TYPES:
        raise GraphOptionError("format", fmt, "graphs are drawn as png, svg or pdf")
    if end <= start:
        raise GraphOptionError("until", end, f"the time range must end after from={start}")
    options = GraphOptions.from_params(params)
    scene = layout_graph(series_list, options, tz or UTC)
    return paint(scene, fmt), CONTENT_TYPES[fmt]


def render_pie(
    slices: Sequence[Slice], params: Mapping[str, str], pie: PieOptions, fmt: str, tz: tzinfo | None
) -> tuple[bytes, str]:
    """A graphite-style pie of ``(name, value)`` slices: ``(body, content type)``.

    ``params`` give the graph options, ``pie`` the pie's own (parsed from
    the same parameters). Raises :class:`GraphOptionError` for a bad
    parameter or format.
    """
    fmt = fmt.lower()
    if fmt not in CONTENT_TYPES:
        raise GraphOptionError("format", fmt, "graphs are drawn as png, svg or pdf")
    scene = layout_pie(slices, GraphOptions.from_params(params), pie, tz or UTC)
    return paint(scene, fmt), CONTENT_TYPES[fmt]
