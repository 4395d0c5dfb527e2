"""consultations.links: one reverse() per pattern gives every question's link, as reverse() would."""

from django.urls import reverse

from consultations import links


def test_spliced_links_are_what_reverse_gives():
    for site in ("admin", "doctor_admin"):
        url_for = links.question_admin_urls(site)
        for pk in (1, 42, 10**12):
            assert url_for(pk) == reverse(f"{site}:consultations_question_change", args=[pk])


def test_a_pattern_without_the_id_whole_falls_back_to_reverse(monkeypatch):
    calls = []

    def fake_reverse(viewname, args):
        calls.append(args[0])
        return f"/{args[0]}/{args[0]}/"  # the id twice: no safe splice

    monkeypatch.setattr(links, "reverse", fake_reverse)
    url_for = links.url_for_any_id("anything")

    assert url_for(7) == "/7/7/"
    assert calls == [links.PLACEHOLDER_ID, 7]


def test_a_site_without_the_change_page_links_to_its_index(monkeypatch):
    assert links.question_admin_urls("admin")(5).endswith("/5/change/")
    monkeypatch.setattr(links, "url_for_any_id", lambda viewname: reverse("no-such-view"))
    assert links.question_admin_urls("admin")(5) == reverse("admin:index")
