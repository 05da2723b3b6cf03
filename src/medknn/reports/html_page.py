"""Rendering of the HTML report pages (Jinja templates in ``reports/templates``) and the image
files they show. Autoescaping is on: every string from the data (class names, ids, paths,
config values) is HTML-escaped by the template engine, never by hand."""

from __future__ import annotations

import io
import math
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup
from PIL import Image

from medknn.io import atomic_write_bytes


def render_page(template: str, **context: Any) -> str:
    """The HTML of ``template`` (e.g. ``"run_report.html"``) filled with ``context``."""
    return _environment().get_template(template).render(**context)


def write_image(image: np.ndarray, path: str | Path) -> Path:
    """An H×W×C (C = 1 or 3) or H×W uint8 image as a PNG file, written atomically."""
    pixels = np.asarray(image)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def format_number(value: Any, digits: int = 3) -> str:
    """Numbers with ``digits`` decimals (integers as they are), ``n/a`` for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, int | np.integer):
        return str(value)
    return f"{value:.{digits}f}"


def break_at_slashes(text: str) -> Markup:
    """``text`` escaped, with line-break opportunities after each ``/`` (long image ids)."""
    return Markup("/<wbr>").join(str(text).split("/"))


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("medknn.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["num"] = format_number
    environment.filters["breakable"] = break_at_slashes
    return environment
