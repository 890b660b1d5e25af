"""Data Docs without internet: GX's pages load Bootstrap, jQuery, Font Awesome and a logo from
public CDNs; `localize_html` points them at copies vendored from the npm registry
(transforms/outputs/report_assets/, provenance and sha256 in SOURCES.json) and fails on any
external reference it does not know.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from markupsafe import Markup

from transforms.config.settings import Settings

ASSETS_SOURCE = Path(__file__).resolve().parent / "report_assets"


class UnvendoredAsset(ValueError):
    """A Data Docs page references something outside the machine that is not vendored."""


# ---------------------------------------------------------------------------------------------
# Vendored assets and the rewrite of GX's pages


def _asset_sources() -> dict[str, dict[str, str]]:
    data = json.loads((ASSETS_SOURCE / "SOURCES.json").read_text(encoding="utf-8"))
    files: dict[str, dict[str, str]] = data["files"]
    return files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_assets(settings: Settings) -> Path:
    """Copy the vendored assets (and their licences) into `$DATA_DIR/reports/assets/`.

    Each file is checked against the sha256 recorded when it was taken from its npm package.
    """
    target = settings.reports_dir / "assets"
    for rel, info in _asset_sources().items():
        source = ASSETS_SOURCE / rel
        digest = _sha256(source)
        if digest != info["sha256"]:
            raise ValueError(f"vendored asset {rel} does not match its recorded sha256")
        dest = target / rel
        if dest.is_file() and _sha256(dest) == digest:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    shutil.copyfile(ASSETS_SOURCE / "SOURCES.json", target / "SOURCES.json")
    return target


_BT = "bootstrap-table-1.19.1"
_FILTER_CONTROL_CSS = f"{_BT}/extensions/filter-control/bootstrap-table-filter-control.min.css"

# Every external URL that GX 1.24's Data Docs templates reference, and the vendored files that
# replace it; an empty tuple drops the reference. Anything not listed fails the build, so a GX
# upgrade cannot quietly bring a CDN back.
VENDORED_URLS: Mapping[str, tuple[str, ...]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/css/bootstrap.min.css",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/js/bootstrap.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        "popper.js-1.12.9/popper.min.js",
    ),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery-3.7.1/jquery.min.js",),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        f"{_BT}/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        f"{_BT}/bootstrap-table.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.js": (
        f"{_BT}/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    # GX links the 1.19.0 stylesheet next to the 1.19.1 script; one vendored copy serves both.
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.css": (_FILTER_CONTROL_CSS,),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/"
    "bootstrap-table-filter-control.min.css": (_FILTER_CONTROL_CSS,),
    # The index page's run-time column filters with a date picker.
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/"
    "bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/"
    "bootstrap-datepicker.min.js": ("bootstrap-datepicker-1.9.0/js/bootstrap-datepicker.min.js",),
    # GX uses the solid icons only (check marks and crosses; bootstrap-table's toolbar icons).
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        "fontawesome-free-6.6.0/css/fontawesome.min.css",
        "fontawesome-free-6.6.0/css/solid.min.css",
    ),
    # A complete second Bootstrap theme for dark mode only; the light theme is kept.
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/"
    "bootstrap-prefers-dark.css": (),
    # Vega draws charts for expectations on distributions; the contracts' suites have none, and
    # a page that does call vegaEmbed fails `localize_html`.
    "https://cdn.jsdelivr.net/npm/vega@5": (),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": (),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": (),
}

# GX's logo (with a cache-busting query) and its dark-mode background image.
_GX_WEB_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

_EXTERNAL = r"(?:https?:)?//"
_SCRIPT_TAG = re.compile(
    r"<script\b[^>]*?\bsrc\s*=\s*[\"'](?P<url>" + _EXTERNAL + r"[^\"']+)[\"'][^>]*>\s*</script>",
    re.IGNORECASE,
)
_LINK_TAG = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"\bhref\s*=\s*[\"'](?P<url>[^\"']*)[\"']", re.IGNORECASE)
_REL_ICON = re.compile(r"\brel\s*=\s*[\"'][^\"']*\bicon\b", re.IGNORECASE)
_IMG_TAG = re.compile(
    r"<img\b[^>]*?\bsrc\s*=\s*[\"'](?P<url>" + _EXTERNAL + r"[^\"']+)[\"'][^>]*>",
    re.IGNORECASE,
)
_CSS_URL = re.compile(
    r"url\(\s*[\"']?(?P<url>" + _EXTERNAL + r"[^\"')]+)[\"']?\s*\)", re.IGNORECASE
)
_FOOTER = re.compile(r"<footer\b[^>]*>.*?</footer>", re.IGNORECASE | re.DOTALL)
_EXTERNAL_ANCHOR = re.compile(
    r"<a\b[^>]*?\bhref\s*=\s*[\"']" + _EXTERNAL + r"[^\"']*[\"'][^>]*>(?P<label>.*?)</a>",
    re.IGNORECASE | re.DOTALL,
)
# Attributes that make a browser fetch or navigate, CSS url() and @import.
_REFERENCE = re.compile(
    r"(?:\b(?:src|href|srcset|action|formaction|poster|background|data|manifest|ping)\s*=\s*"
    r"[\"']?\s*|url\(\s*[\"']?|@import\s+[\"']?)(?P<url>" + _EXTERNAL + r"[^\"'\s)>]*)",
    re.IGNORECASE,
)

BRAND_HTML = (
    '<span class="navbar-text font-weight-bold text-dark">数据质量文档 '
    '<small class="text-muted">Data Docs</small></span>'
)


def external_references(page: str) -> list[str]:
    """URLs outside the machine that a page would fetch or link to (src, href, url(), ...).

    Namespace declarations (xmlns="http://www.w3.org/...") are names, not references, and text
    that merely mentions a URL is not fetched."""
    return [m.group("url") for m in _REFERENCE.finditer(page)]


_SCRIPT = Markup('<script src="{}"></script>')
_STYLESHEET = Markup('<link rel="stylesheet" href="{}">')
_SPAN = Markup("<span>{}</span>")


def _asset_tags(url: str, kind: str, prefix: str) -> str:
    if url not in VENDORED_URLS:
        raise UnvendoredAsset(f"Data Docs reference an asset that is not vendored: {url}")
    paths = [f"{prefix}/{rel}" for rel in VENDORED_URLS[url]]
    # Markup.format escapes each path as Jinja's autoescape would
    tag = _SCRIPT if kind == "script" else _STYLESHEET
    return "".join(tag.format(p) for p in paths)


def localize_html(page: str, assets_prefix: str) -> str:
    """Rewrite a GX Data Docs page so that it loads nothing from outside the machine.

    `assets_prefix` is the relative URL from the page to `reports/assets`. CDN scripts and
    stylesheets become vendored copies (without SRI attributes: a file:// page cannot make the
    CORS request SRI needs), GX's logo becomes a text brand, its favicon and newsletter footer
    go, and links to GX's web site keep their label only. Raises UnvendoredAsset for anything
    external that remains.
    """
    if "vegaEmbed" in page:
        raise UnvendoredAsset("a Data Docs page draws a Vega chart; Vega is not vendored")

    page = _SCRIPT_TAG.sub(lambda m: _asset_tags(m.group("url"), "script", assets_prefix), page)

    def link(match: re.Match[str]) -> str:
        tag = match.group(0)
        href = _HREF.search(tag)
        if _REL_ICON.search(tag):
            return ""  # GX's favicon, with a wrong relative path on validation pages
        if href is None or not re.match(_EXTERNAL, href.group("url")):
            return tag
        return _asset_tags(href.group("url"), "link", assets_prefix)

    page = _LINK_TAG.sub(link, page)

    def image(match: re.Match[str]) -> str:
        if not match.group("url").startswith(_GX_WEB_ASSETS):
            raise UnvendoredAsset(f"Data Docs show an external image: {match.group('url')}")
        return BRAND_HTML

    page = _IMG_TAG.sub(image, page)

    def css_url(match: re.Match[str]) -> str:
        if not match.group("url").startswith(_GX_WEB_ASSETS):
            raise UnvendoredAsset(f"Data Docs styles load an external file: {match.group('url')}")
        return "none"

    page = _CSS_URL.sub(css_url, page)
    page = _FOOTER.sub(lambda m: "" if re.search(_EXTERNAL, m.group(0)) else m.group(0), page)
    # the label is GX's own markup (text and icons): kept as it is, only the link goes
    page = _EXTERNAL_ANCHOR.sub(lambda m: _SPAN.format(Markup(m.group("label"))), page)

    left = external_references(page)
    if left:
        raise UnvendoredAsset(f"Data Docs still reference outside addresses: {sorted(set(left))}")
    return page
