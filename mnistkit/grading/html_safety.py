"""Students' markdown rendered safely in nbgrader's HTML: feedback files and formgrader's views.

A student's markdown cell may hold raw HTML (``<script>``, ``<img onerror=...>``, a
``javascript:`` link). nbgrader renders markdown cells with its own templates (feedback and
formgrade), which call the ``markdown2html`` filter but never nbconvert's ``clean_html``, even
with ``HTMLExporter.sanitize_html`` on; and formgrader shows the result to an instructor whose
browser is logged in to the course's Jupyter server, so a script there could act as them.

nbgrader_config.py registers ``SanitizedMarkdown`` as the ``markdown2html`` filter of every
``HTMLExporter`` (``c.HTMLExporter.filters``): it renders as nbconvert does, then keeps only a
list of formatting tags and harmless attributes (no scripts, event handlers, styles, ids,
forms, frames; links only to http(s)/mailto/anchors; images only from http(s) or ``data:image``).
Disallowed tags are shown as text, so the instructor sees what the student wrote.
``HTMLExporter.sanitize_html`` (also set there) covers cell outputs the same way.
"""
from __future__ import annotations

import bleach
import jinja2
from traitlets.config import LoggingConfigurable

TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p",
    "pre", "q", "s", "samp", "small", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
})
PROTOCOLS = ("http", "https", "mailto", "data")
_PASS_CONTEXT = jinja2.pass_context(lambda context, value: value).jinja_pass_arg


def _attribute(tag: str, name: str, value: str) -> bool:
    if name in ("class", "title", "alt", "align"):
        return True
    if tag in ("td", "th") and name in ("colspan", "rowspan"):
        return True
    target = value.strip().lower()
    if tag == "a" and name == "href":
        return not target.startswith("data:")
    if tag == "img" and name in ("src", "width", "height"):
        return name != "src" or not target.startswith("data:") or target.startswith("data:image/")
    return False


def clean_student_html(html: str) -> str:
    """``html`` with only formatting left (see the module docstring)."""
    return bleach.clean(str(html), tags=TAGS, attributes=_attribute, protocols=PROTOCOLS,
                        strip=False, strip_comments=True)


class SanitizedMarkdown(LoggingConfigurable):
    """The ``markdown2html`` filter, sanitized. nbconvert builds it with the exporter as
    ``parent`` and jinja passes the template context (attachments, the notebook's path)."""

    jinja_pass_arg = _PASS_CONTEXT

    def __call__(self, context, source) -> str:
        exporter = self.parent
        if exporter is not None and hasattr(exporter, "markdown2html"):
            html = exporter.markdown2html(context, source)
        else:   # not inside an HTMLExporter: nbconvert's plain renderer
            from nbconvert.filters import markdown2html
            html = markdown2html(source)
        return clean_student_html(html)
