"""PyProtocols adaptation on a request path, including the paths where nothing adapts."""
import protocols
from pylons import response

from wh_pylons.lib.base import BaseController
from wh_pylons.lib.describe import Book, IDescribed, Label, Song

NOTHING = object()


class AdaptationController(BaseController):

    def index(self):
        book = Book(u'Dune', 412)
        label = Label(u'fragile')
        song = Song(u'Blackbird')
        lines = [
            u'adapt class adapter: ' + protocols.adapt(book, IDescribed).describe(),
            u'adapt function adapter: ' + protocols.adapt(7, IDescribed).describe(),
            u'interface call: ' + IDescribed(book).describe(),
            u'provided directly: %s' % (protocols.adapt(label, IDescribed) is label),
            u'direct describe: ' + protocols.adapt(label, IDescribed).describe(),
            u'no adapter, default None: %s' % (protocols.adapt(song, IDescribed, None) is None),
            u'no adapter, default object: %s' % (protocols.adapt(song, IDescribed, NOTHING) is NOTHING),
            u'no adapter, interface call default: %s' % IDescribed(song, u'fallback'),
        ]
        try:
            protocols.adapt(song, IDescribed)
        except protocols.AdaptationFailure, err:
            lines.append(u'no adapter, no default: AdaptationFailure caught')
            lines.append(u'failure message: %s' % err.args[0])
            lines.append(u'failure is NotImplementedError: %s' % isinstance(err, NotImplementedError))
            lines.append(u'failure is TypeError: %s' % isinstance(err, TypeError))
        else:
            lines.append(u'no adapter, no default: nothing raised')
        response.content_type = 'text/plain'
        return u'\n'.join(lines) + u'\n'
