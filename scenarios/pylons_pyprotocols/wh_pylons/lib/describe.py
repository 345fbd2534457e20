"""PEAK pieces of wh_pylons: a PyProtocols interface with its adapters, and RuleDispatch
generic functions. Imported by config/environment.py, so both packages (and their C
speedups) are loaded when the application is, not on the first request.

Written against PyProtocols 1.0a0 and RuleDispatch 0.5a0 (Python 2):
  * adapters take one argument, the object being adapted;
  * protocols.adapt(ob, proto) raises protocols.AdaptationFailure (a subclass of both
    NotImplementedError and TypeError) when nothing adapts and no default is given;
  * a generic function with no applicable rule raises dispatch.NoApplicableMethods.
Every rule below is exclusive of the others for the values the controllers pass, so
no answer depends on how RuleDispatch ranks overlapping rules.
"""
import dispatch
import protocols


class IDescribed(protocols.Interface):
    """Anything that can describe itself in one line of text."""

    def describe():
        """Return a one-line unicode description."""


class Book(object):
    def __init__(self, title, pages):
        self.title = title
        self.pages = pages


class Song(object):
    """Nothing adapts a Song to IDescribed."""

    def __init__(self, title):
        self.title = title


class Label(object):
    """Provides IDescribed itself: adapting it returns the very same object."""

    protocols.advise(instancesProvide=[IDescribed])

    def __init__(self, text):
        self.text = text

    def describe(self):
        return u'label %s' % self.text


class BookAsDescribed(object):
    """Adapter class, registered for Book by advise()."""

    protocols.advise(instancesProvide=[IDescribed], asAdapterForTypes=[Book])

    def __init__(self, book):
        self.book = book

    def describe(self):
        return u'book %s (%d pages)' % (self.book.title, self.book.pages)


class NumberAsDescribed(object):
    def __init__(self, number):
        self.number = number

    def describe(self):
        return u'number %d' % self.number


def number_adapter(number):
    """Adapter function, registered for int with declareAdapter()."""
    return NumberAsDescribed(number)


protocols.declareAdapter(number_adapter, provides=[IDescribed], forTypes=[int])


@dispatch.generic()
def size_word(value):
    """One word for a value: its kind, and for ints how big it is."""


@size_word.when("isinstance(value, int) and value < 0")
def _size_negative(value):
    return u'negative'


@size_word.when("isinstance(value, int) and value >= 0 and value < 10")
def _size_small(value):
    return u'small'


@size_word.when("isinstance(value, int) and value >= 10")
def _size_large(value):
    return u'large'


@size_word.when("isinstance(value, float)")
def _size_real(value):
    return u'real'


@size_word.when("isinstance(value, unicode)")
def _size_text(value):
    return u'text'


@size_word.when("isinstance(value, str)")
def _size_bytes(value):
    return u'bytes'


@dispatch.generic()
def combine(left, right):
    """Combine two values; the rule is chosen on both arguments."""


@combine.when("isinstance(left, int) and isinstance(right, int)")
def _combine_ints(left, right):
    return u'%d' % (left + right)


@combine.when("isinstance(left, unicode) and isinstance(right, int)")
def _combine_repeat(left, right):
    return left * right


@combine.when("isinstance(left, Book) and isinstance(right, unicode)")
def _combine_book(left, right):
    return u'%s: %s' % (left.title, right)
