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


def test_one_id_links_are_what_reverse_gives_and_follow_the_script_prefix(monkeypatch):
    """url_for_id keeps each name's pattern per process, under the URLconf, script prefix and
    language of the moment (the ask post's e-mail link and redirect)."""
    from django.urls import set_script_prefix

    reversed_names = []
    real = links.url_for_any_id
    monkeypatch.setattr(links, "_kept", {})
    monkeypatch.setattr(links, "url_for_any_id", lambda name: reversed_names.append(name) or real(name))
    for pk in (1, 42, 10**12):
        assert links.url_for_id("consultations:question_detail", pk) == reverse(
            "consultations:question_detail", args=[pk]
        )
    assert reversed_names == ["consultations:question_detail"]
    try:
        set_script_prefix("/clinic/")
        served_under = links.url_for_id("consultations:question_detail", 9)
        assert served_under == reverse("consultations:question_detail", args=[9])
        assert served_under.startswith("/clinic/")
    finally:
        set_script_prefix("/")
    assert links.url_for_id("consultations:question_detail", 9) == reverse("consultations:question_detail", args=[9])
    assert not links.url_for_id("consultations:question_detail", 9).startswith("/clinic/")
