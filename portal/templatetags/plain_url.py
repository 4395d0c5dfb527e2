"""Django's `{% url %}`, with a name alone (no arguments) reversed once per process.

Installed as a template builtin (settings.TEMPLATES), so it replaces the built-in
tag for every template: the syntax, the escaping, `as var` and the current app
(from the request, as Django's tag finds it) are Django's own; only a link
without arguments goes through `portal.url_memo.reverse_plain`.
"""

from django import template
from django.template.defaulttags import URLNode
from django.template.defaulttags import url as django_url_tag
from django.urls import NoReverseMatch
from django.utils.html import conditional_escape

from portal.url_memo import reverse_plain

register = template.Library()


class PlainURLNode(URLNode):
    def render(self, context):
        if self.args or self.kwargs:
            return super().render(context)
        view_name = self.view_name.resolve(context)
        try:
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        url = ""
        try:
            url = reverse_plain(view_name, current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = url
            return ""
        return conditional_escape(url) if context.autoescape else url


@register.tag
def url(parser, token):
    node = django_url_tag(parser, token)
    return PlainURLNode(node.view_name, node.args, node.kwargs, node.asvar)
