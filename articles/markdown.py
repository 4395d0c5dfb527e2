"""Markdown to safe HTML for article bodies, plus what the page derives from it
(table of contents, word count, reading time).

Called once when an article is saved; the result is stored. Everything the
Markdown produces (including raw HTML an author typed) goes through nh3 with
an allow-list, so no script, frame, event handler or javascript: URL survives.
"""

import html
import math
from dataclasses import dataclass, field

import markdown
import nh3

WORDS_PER_MINUTE = 200
# Heading ids get a prefix so an author's id can never clash with the page's own.
HEADING_ID_PREFIX = "s-"
TOC_LEVELS = (2, 3)

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "h2": {"id"},
    "h3": {"id"},
    "h4": {"id"},
    "h5": {"id"},
    "h6": {"id"},
    "th": {"align", "colspan", "rowspan"},
    "td": {"align", "colspan", "rowspan"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Removed together with their content (not just the tags).
DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template", "textarea", "select"}


@dataclass(frozen=True)
class RenderedBody:
    html: str
    toc: list[dict] = field(default_factory=list)
    word_count: int = 0
    reading_minutes: int = 1


def sanitize_html(raw_html: str) -> str:
    return nh3.clean(
        raw_html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROP_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        id_prefix=HEADING_ID_PREFIX,
    )


def reading_minutes_for(word_count: int) -> int:
    return max(1, math.ceil(word_count / WORDS_PER_MINUTE))


def plain_text(safe_html: str) -> str:
    return html.unescape(nh3.clean(safe_html, tags=set(), clean_content_tags=DROP_WITH_CONTENT))


def _flatten_toc(tokens: list[dict]) -> list[dict]:
    entries = []
    for token in tokens:
        if token["level"] in TOC_LEVELS:
            entries.append(
                {
                    "id": HEADING_ID_PREFIX + token["id"],
                    # toc's "name" is HTML-escaped text; templates escape it again.
                    "title": html.unescape(token["name"]),
                    "level": token["level"],
                }
            )
        entries.extend(_flatten_toc(token.get("children", [])))
    return entries


def render_markdown(text: str) -> RenderedBody:
    md = markdown.Markdown(
        extensions=["toc", "tables", "sane_lists", "fenced_code"],
        extension_configs={"toc": {"toc_depth": "2-3", "permalink": False}},
        output_format="html",
    )
    safe = sanitize_html(md.convert(text or ""))
    words = len(plain_text(safe).split())
    return RenderedBody(
        html=safe,
        toc=_flatten_toc(md.toc_tokens),
        word_count=words,
        reading_minutes=reading_minutes_for(words),
    )
