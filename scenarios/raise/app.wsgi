"""Exception control: the app raises on every request."""


class ControlError(RuntimeError):
    pass


def application(environ, start_response):
    raise ControlError("raised on purpose by the 'raise' control")
