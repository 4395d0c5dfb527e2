"""Public pages: home, the article list and page, doctor profiles, newsletter.

Thin: the data comes from articles.selectors (cached), the rules from
articles.newsletter; a view only reads the request and picks a template.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_safe

from articles import newsletter, popularity, selectors
from articles.forms import NewsletterForm, SearchForm
from articles.seo import absolute_url, article_structured_data, json_ld


def ask_url(specialty=None) -> str:
    url = reverse("consultations:ask")
    return f"{url}?{urlencode({'specialty': specialty.slug})}" if specialty else url


@require_safe
def home(request):
    data = selectors.home_page()
    return render(
        request,
        "articles/home.html",
        {
            **data,
            "popular": selectors.popular(),
            "search_form": SearchForm(),
            "ask_url": ask_url(),
            "canonical_url": absolute_url(reverse("home")),
        },
    )


@require_safe
def article_list(request):
    form = SearchForm(request.GET)
    # Bad filter values are ignored rather than refused: this is a public search page.
    params = form.cleaned_data if form.is_valid() else {}
    text = params.get("q") or ""
    specialty = params.get("specialty") or ""
    tag = params.get("tag") or ""
    page = selectors.article_list(text, specialty, tag, params.get("page") or 1)
    filters = {key: value for key, value in (("q", text), ("specialty", specialty), ("tag", tag)) if value}
    # Search results are not canonical pages; filtered lists are.
    canonical_params = {key: value for key, value in filters.items() if key != "q"}
    if page.number > 1:
        canonical_params["page"] = page.number
    canonical = absolute_url(reverse("articles:list"))
    if canonical_params:
        canonical += "?" + urlencode(canonical_params)
    return render(
        request,
        "articles/article_list.html",
        {
            "page": page,
            "search_form": form,
            "query": text,
            "filters_query": urlencode(filters),
            "specialty_slug": specialty,
            "tag_slug": tag,
            "canonical_url": canonical,
            "ask_url": ask_url(page.specialty),
            "noindex": bool(text),
        },
    )


@require_safe
def article_detail(request, slug):
    data = selectors.article_page(slug)
    if data is None:
        raise Http404("No such article.")
    article = data["article"]
    if request.method == "GET":
        popularity.record_view(article.pk)
    popular = [item for item in selectors.popular(selectors.POPULAR_COUNT + 1) if item.pk != article.pk]
    return render(
        request,
        "articles/article_detail.html",
        {
            **data,
            "popular": popular[: selectors.POPULAR_COUNT],
            "verified": article.review_is_current(),
            "review_months": settings.ARTICLE_REVIEW_MONTHS,
            "og_image": absolute_url(article.hero_image.url) if article.hero_image else "",
            "canonical_url": absolute_url(article.get_absolute_url()),
            "json_ld": json_ld(article_structured_data(article, data["tags"], data["sources"])),
            "ask_url": ask_url(article.specialty),
            "newsletter_form": NewsletterForm(initial={"next": article.get_absolute_url()}),
        },
    )


@require_safe
def doctor_profile(request, slug):
    data = selectors.doctor_page(slug)
    if data is None:
        raise Http404("No such doctor.")
    doctor = data["doctor"]
    specialties = list(doctor.specialties.all())
    # One specialty: the call to action pre-selects it; several: the patient chooses.
    cta_specialty = specialties[0] if len(specialties) == 1 else None
    return render(
        request,
        "articles/doctor_profile.html",
        {
            **data,
            "specialties": specialties,
            "canonical_url": absolute_url(doctor.get_absolute_url()),
            "cta_specialty": cta_specialty,
            "ask_url": ask_url(cta_specialty),
        },
    )


def _safe_next(request, candidate: str) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


@require_http_methods(["GET", "POST"])
def newsletter_signup(request):
    if request.method == "POST":
        form = NewsletterForm(request.POST)
        if form.is_valid():
            email = form.cleaned_data["email"]
            _subscriber, outcome = newsletter.subscribe(email)
            level = messages.INFO if outcome is newsletter.Outcome.ALREADY_SUBSCRIBED else messages.SUCCESS
            messages.add_message(request, level, newsletter.message_for(outcome, email))
            back = _safe_next(request, form.cleaned_data.get("next", ""))
            target = reverse("articles:newsletter")
            return redirect(f"{target}?{urlencode({'next': back})}" if back else target)
        status = 400
    else:
        form = NewsletterForm(initial={"next": _safe_next(request, request.GET.get("next", ""))})
        status = 200
    back = _safe_next(request, form["next"].value() or "")
    return render(request, "articles/newsletter.html", {"form": form, "back_url": back}, status=status)


@require_http_methods(["GET", "POST"])
def newsletter_confirm(request, token):
    # GET only shows a button: mail scanners that prefetch links must not confirm.
    try:
        subscriber = newsletter.check_confirm_token(token)
        if request.method == "POST":
            subscriber, changed = newsletter.confirm(token)
            return render(
                request,
                "articles/newsletter_done.html",
                {"action": "confirmed", "changed": changed, "email": subscriber.email},
            )
    except newsletter.NewsletterError as error:
        return render(request, "articles/newsletter_done.html", {"error": str(error)}, status=400)
    return render(request, "articles/newsletter_action.html", {"action": "confirm", "subscriber": subscriber})


@require_http_methods(["GET", "POST"])
def newsletter_unsubscribe(request, token):
    try:
        subscriber = newsletter.check_unsubscribe_token(token)
        if request.method == "POST":
            subscriber, changed = newsletter.unsubscribe(token)
            return render(
                request,
                "articles/newsletter_done.html",
                {"action": "unsubscribed", "changed": changed, "email": subscriber.email},
            )
    except newsletter.NewsletterError as error:
        return render(request, "articles/newsletter_done.html", {"error": str(error)}, status=400)
    return render(request, "articles/newsletter_action.html", {"action": "unsubscribe", "subscriber": subscriber})
