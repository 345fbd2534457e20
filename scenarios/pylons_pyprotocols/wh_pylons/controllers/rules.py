"""RuleDispatch generic functions on a request path, including a call no rule applies to."""
import dispatch
from pylons import response

from wh_pylons.lib.base import BaseController
from wh_pylons.lib.describe import Book, combine, size_word


class RulesController(BaseController):

    def index(self):
        lines = []
        for value in (-5, 3, 42, 2.5, u'caf\xe9', 'raw'):
            lines.append(u'size_word(%r): %s' % (value, size_word(value)))
        lines.append(u'combine(2, 40): ' + combine(2, 40))
        lines.append(u'combine(u"ab", 3): ' + combine(u'ab', 3))
        lines.append(u'combine(Book, u"sci-fi"): ' + combine(Book(u'Dune', 412), u'sci-fi'))
        # hashable values only: an inequality index may look the value up in a dict
        for args in ((None,), ((1, 2),)):
            try:
                size_word(*args)
            except dispatch.NoApplicableMethods:
                lines.append(u'size_word(%r): NoApplicableMethods caught' % (args[0],))
            else:
                lines.append(u'size_word(%r): a rule applied' % (args[0],))
        try:
            combine(u'ab', u'cd')
        except dispatch.NoApplicableMethods:
            lines.append(u'combine(u"ab", u"cd"): NoApplicableMethods caught')
        else:
            lines.append(u'combine(u"ab", u"cd"): a rule applied')
        response.content_type = 'text/plain'
        return u'\n'.join(lines) + u'\n'
