"""Public pages: home, the article list and page, doctor profiles, newsletter.

Thin: the data comes from articles.selectors (cached), the rules from
articles.newsletter; a view only reads the request and picks a template.

Home, the list and the article page are the same for every anonymous visitor,
so the rendered page itself is cached for them (see `_serve`): a repeat visit
costs one cache read, plus the view count, which is recorded on every visit
outside the cached part (once per visitor per article per day, see popularity).
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from articles import cache as article_cache
from articles import newsletter, popularity, selectors
from articles.forms import NewsletterForm, SearchForm
from articles.seo import absolute_url, article_structured_data, json_ld
from portal.ratelimit import rate_limited
from portal.redirects import safe_next

# Browsers and shared caches may keep an anonymous visitor's copy this long
# (the pages hold nothing personal; Vary: Cookie keeps signed-in pages apart).
SHARED_MAX_AGE = 60
# The list page reads exactly these query parameters; any others (tracking
# tags, typos) are left out of the cache key, so they share one copy.
LIST_PARAMS = tuple(SearchForm.base_fields)


@dataclass
class Page:
    """A rendered public page, and what each visit must do whether it was cached or not."""

    response: HttpResponse
    viewed_article_id: int | None = None
    valid_seconds: float = article_cache.PAGE_TIMEOUT

    def payload(self) -> tuple:
        return (self.response["Content-Type"], self.response.content, self.viewed_article_id)

    @classmethod
    def from_payload(cls, payload: tuple) -> "Page":
        content_type, content, viewed_article_id = payload
        return cls(HttpResponse(content, content_type=content_type), viewed_article_id)


def _visitor_may_share(request: HttpRequest) -> bool:
    # Signed-in visitors see their name and a log-out form with their own CSRF
    # token; a waiting message ("you are signed out") is shown once, to its
    # owner. Either way the page is theirs alone.
    return not request.user.is_authenticated and not len(messages.get_messages(request))


def _page_is_shareable(request: HttpRequest, response: HttpResponse) -> bool:
    # Only what a GET shows everyone: an invalid form comes back as a 200 too (the one
    # form convention), so a POST's answer is never stored. A page that asked for a
    # CSRF token (a template gained a {% csrf_token %}) or set a cookie belongs to one
    # visitor, whatever the template meant.
    return (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and not response.cookies
        and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    )


def _serve(request: HttpRequest, build: Callable[[], Page], params: tuple[str, ...] = ()) -> HttpResponse:
    """The anonymous visitors' shared copy of a page, built and stored on a miss.

    Keyed on the path and the query parameters the page reads (`params`), and
    tied to the articles' content version, so an edit is visible at once.
    Security headers (CSP and the rest) are added by middleware after this,
    so a cached page gets them fresh on every response.
    """
    if not _visitor_may_share(request):
        return _finish(request, build(), shared=False)
    key = shared_page_key(request, params)
    version, stored = article_cache.get_page(key)
    if stored is not None:
        return _finish(request, Page.from_payload(stored), shared=True)
    page = build()
    shared = _page_is_shareable(request, page.response)
    if shared and version is not None:
        article_cache.put_page(key, version, page.payload(), page.valid_seconds)
    return _finish(request, page, shared=shared)


def shared_page_key(request: HttpRequest, params: tuple[str, ...]) -> str:
    query = [(name, value) for name in params for value in request.GET.getlist(name)]
    return article_cache.page_key(request.path, query)


def serve_stored(request: HttpRequest, stored: tuple, counted: bool = False) -> HttpResponse:
    """The shared copy as a response, exactly as `_serve` answers it (also used by
    articles.middleware.EarlyPageCacheMiddleware, which answers before the view and
    has its view counted by the read itself: `counted`)."""
    return _finish(request, Page.from_payload(stored), shared=True, counted=counted)


def _finish(request: HttpRequest, page: Page, shared: bool, counted: bool = False) -> HttpResponse:
    if shared:
        patch_cache_control(page.response, public=True, max_age=SHARED_MAX_AGE)
    else:
        patch_cache_control(page.response, private=True)
    patch_vary_headers(page.response, ["Cookie"])
    if page.viewed_article_id is not None and request.method == "GET" and not counted:
        popularity.record_view(page.viewed_article_id, popularity.visitor_from_request(request))
    return page.response


def ask_url(specialty=None) -> str:
    url = reverse("consultations:ask")
    return f"{url}?{urlencode({'specialty': specialty.slug})}" if specialty else url


@require_safe
def home(request):
    return _serve(request, lambda: _home_page(request))


def _home_page(request) -> Page:
    data = selectors.home_page()
    return Page(
        render(
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
    )


@require_safe
def article_list(request):
    return _serve(request, lambda: _list_page(request), params=LIST_PARAMS)


def _list_page(request) -> Page:
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
    response = render(
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
            # Nothing found: the most read articles instead of an empty page.
            "suggestions": selectors.popular(3) if not page.count else [],
        },
    )
    return Page(response)


@require_safe
def article_detail(request, slug):
    return _serve(request, lambda: _article_page(request, slug))


def _article_page(request, slug) -> Page:
    data = selectors.article_page(slug)
    if data is None:
        raise Http404("No such article.")
    article = data["article"]
    popular = [item for item in selectors.popular(selectors.POPULAR_COUNT + 1) if item.pk != article.pk]
    now = timezone.now()
    verified = article.review_is_current(now)
    response = render(
        request,
        "articles/article_detail.html",
        {
            **data,
            "popular": popular[: selectors.POPULAR_COUNT],
            "verified": verified,
            "review_months": settings.ARTICLE_REVIEW_MONTHS,
            "og_image": absolute_url(article.hero_image.url) if article.hero_image else "",
            "canonical_url": absolute_url(article.get_absolute_url()),
            "json_ld": json_ld(article_structured_data(article, data["tags"], data["sources"])),
            "ask_url": ask_url(article.specialty),
            "newsletter_form": NewsletterForm(initial={"next": article.get_absolute_url()}),
        },
    )
    # The "Verified data" badge must go the moment the review expires, not when the copy does.
    valid = (article.next_review_due_at - now).total_seconds() if verified else article_cache.PAGE_TIMEOUT
    return Page(response, viewed_article_id=article.pk, valid_seconds=valid)


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


def _own_origins(request) -> set[str]:
    return {f"{request.scheme}://{request.get_host()}", settings.SITE_URL, *settings.CSRF_TRUSTED_ORIGINS}


def _posted_from_another_site(request) -> bool:
    """True when a browser says this post comes from a page of another site.

    Browsers send Origin with every POST and Sec-Fetch-Site where they support
    it; a page cannot remove either. A client that sends neither is not a
    browser, so it carries no visitor's cookies to misuse.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    return origin is not None and origin not in _own_origins(request)


# No CSRF token: the sign-up form sits on the cached article pages, which are
# one copy for every anonymous visitor, so it cannot carry a per-visitor token.
# Instead a post that a browser says comes from another site (Origin,
# Sec-Fetch-Site) is refused before anything happens, and the reply to every
# sign-up is one fixed text (newsletter.SIGN_UP_REPLY) that neither names the
# address nor says whether it was new, waiting or subscribed. So a cached page
# can never hold a token for the wrong visitor, another site cannot make the
# portal show its text, and no reply tells who reads the newsletter. The
# address owner must still click the e-mailed link (double opt-in), the same
# address gets at most one e-mail per newsletter.RESEND_AFTER, and posts are
# rate limited per client. Confirm and unsubscribe keep their CSRF tokens.
@csrf_exempt
@rate_limited("newsletter")
@require_http_methods(["GET", "POST"])
def newsletter_signup(request):
    if request.method == "POST" and _posted_from_another_site(request):
        # Nothing from the forged post is kept or shown: a fresh, empty form.
        form = NewsletterForm()
        return render(
            request,
            "articles/newsletter.html",
            {"form": form, "back_url": "", "refused_cross_site": True},
            status=403,
        )
    if request.method == "POST":
        form = NewsletterForm(request.POST)
        if form.is_valid():
            newsletter.sign_up(form.cleaned_data["email"])
            messages.success(request, newsletter.SIGN_UP_REPLY)
            back = safe_next(request, form.cleaned_data.get("next", ""))
            # The reply page: the reply (as a message, which also keeps the page from the
            # page cache) and what next, without the form again. It names no address.
            query = {"sent": "1", **({"next": back} if back else {})}
            return redirect(f"{reverse('articles:newsletter')}?{urlencode(query)}")
        # Invalid: the form again with its errors, 200 as every form of the site.
    else:
        form = NewsletterForm(initial={"next": safe_next(request, request.GET.get("next", ""))})
    back = safe_next(request, form["next"].value() or "")
    context = {"form": form, "back_url": back, "sent": request.method == "GET" and "sent" in request.GET}
    if context["sent"]:
        context["reply"] = newsletter.SIGN_UP_REPLY
    return render(request, "articles/newsletter.html", context)


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


# The pages `_serve` shares between anonymous visitors, with the query
# parameters each one's copy is keyed on (read by articles.middleware).
SHARED_PAGES = {home: (), article_list: LIST_PARAMS, article_detail: ()}
# Those whose copy is an article's view (Page.viewed_article_id): a GET counts it.
COUNTED = frozenset({article_detail})
