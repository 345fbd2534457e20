"""JSON through simplejson: encode, decode and re-encode, then answer via @jsonify."""
from collections import OrderedDict

import simplejson
from pylons.decorators import jsonify

from wh_pylons.lib.base import BaseController


def _sample():
    """Nested mappings, unicode beyond ASCII, UTF-8 bytes, floats, ints, booleans and null.
    OrderedDict keeps the key order fixed, so the answer is the same byte for byte."""
    return OrderedDict([
        ('name', u'caf\xe9 \u2603'),
        ('bytes', 'na\xc3\xafve'),  # UTF-8 str: the encoder decodes it
        ('floats', [0.1, 1.5, -2.25, 1e-07, 3.141592653589793, 1e+22]),
        ('ints', [0, -1, 2 ** 40]),
        ('flags', OrderedDict([('yes', True), ('no', False), ('none', None)])),
        ('nested', OrderedDict([
            ('level', 1),
            ('inner', OrderedDict([
                ('level', 2),
                ('text', u'<tag> & "quote" \t tab \u00ff'),
                ('list', [OrderedDict([('k', u'\u0444')]), [], OrderedDict()]),
            ])),
        ])),
    ])


class DataController(BaseController):

    @jsonify
    def index(self):
        payload = _sample()
        expected = OrderedDict(payload)
        expected['bytes'] = payload['bytes'].decode('utf-8')  # what decoding gives back
        text = simplejson.dumps(payload)  # C encoder (c_make_encoder) when available
        plain = simplejson.loads(text)  # C scanner from a str
        ordered = simplejson.loads(text.decode('ascii'), object_pairs_hook=OrderedDict)  # from unicode
        again = simplejson.dumps(ordered)
        floats = simplejson.loads(simplejson.dumps(payload['floats']))
        checks = OrderedDict([
            ('roundtrip_equal', plain == expected and ordered == expected),
            ('reencoded_same', again == text),
            ('name_is_unicode', isinstance(plain['name'], unicode)),
            ('floats_exact', floats == payload['floats']),
            ('float_sum', sum(floats[:5])),
            ('encoded_length', len(text)),
        ])
        return OrderedDict([('checks', checks), ('data', ordered)])
