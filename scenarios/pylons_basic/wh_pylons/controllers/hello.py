"""The home page and a report of which C speedups are in use."""
import markupsafe
import simplejson.encoder
import simplejson.scanner
from pylons import response

from wh_pylons.lib.base import BaseController


def _speedup_report():
    """'C' where the compiled speedups module is in use, 'py' for the pure-Python fallback."""
    json_c = (simplejson.encoder.c_make_encoder is not None
              and simplejson.scanner.c_make_scanner is not None)
    markup_c = markupsafe.escape.__module__ == 'markupsafe._speedups'
    return 'simplejson=%s markupsafe=%s\n' % ('C' if json_c else 'py', 'C' if markup_c else 'py')


class HelloController(BaseController):

    def index(self):
        response.content_type = 'text/plain'
        return 'hello from wh_pylons on Pylons 1.0\n'

    def speedups(self):
        response.content_type = 'text/plain'
        return _speedup_report()
