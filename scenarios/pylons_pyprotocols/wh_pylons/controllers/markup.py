"""HTML escaping through MarkupSafe, WebHelpers and a Mako template; answers plain text."""
from markupsafe import Markup, escape, escape_silent, soft_unicode
from pylons import response, tmpl_context as c
from webhelpers.html import HTML, literal
from webhelpers.html import escape as wh_escape

from wh_pylons.lib.base import BaseController, render

RAW = u'<a href="x?a=1&b=2">it\'s caf\xe9</a>'


class Shouting(object):
    """An object that knows its own HTML form (the __html__ protocol)."""

    def __html__(self):
        return u'<b>LOUD</b>'


def _lines():
    escaped = escape(RAW)
    joined = Markup(u'<p>') + RAW + Markup(u'</p>')
    formatted = Markup(u'<em>%s</em>') % RAW
    named = Markup(u'<i>%(who)s</i> <b>%(n)d</b>') % {'who': u'<Tom & Jerry>', 'n': 7}
    joined_list = Markup(u'<br>').join([u'a<b', Markup(u'<hr>'), u'c&d'])
    lit = literal(u'<span>') + RAW + literal(u'</span>')
    tag = HTML.a(RAW, href=u'/search?q=<x>&lang=fr')
    return [
        (u'escape', escaped),
        (u'escape is Markup', isinstance(escaped, Markup)),
        (u'escape of Markup unchanged', escape(Markup(u'<ok>')) == u'<ok>'),
        (u'escape of int', escape(42)),
        (u'escape __html__', escape(Shouting())),
        (u'escape_silent None', escape_silent(None) == u''),
        (u'soft_unicode', soft_unicode(5)),
        (u'concat', joined),
        (u'concat is Markup', isinstance(joined, Markup)),
        (u'format %s', formatted),
        (u'format %(name)s', named),
        (u'join', joined_list),
        (u'striptags', Markup(u'<p>a &amp; <b>b</b></p>').striptags()),
        (u'unescape', Markup(u'&lt;&#39;&#34;&amp;&gt;').unescape()),
        (u'webhelpers escape', wh_escape(RAW)),
        (u'webhelpers literal', lit),
        (u'literal is Markup', isinstance(lit, Markup)),
        (u'HTML.a', tag),
    ]


class MarkupController(BaseController):

    def index(self):
        c.raw = RAW
        c.safe = Markup(u'<strong>kept</strong>')
        c.shout = Shouting()
        page = render('/escape.mako')
        response.content_type = 'text/plain'
        response.charset = 'utf-8'
        body = [u'%s: %s' % (name, value) for name, value in _lines()]
        body.append(u'mako: ' + page.strip())
        return u'\n'.join(body) + u'\n'
