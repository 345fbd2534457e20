"""The base controller every wh_pylons controller inherits."""
from pylons.controllers import WSGIController
from pylons.templating import render_mako as render  # noqa: F401


class BaseController(WSGIController):

    def __call__(self, environ, start_response):
        """Run the action; routing information is in environ['pylons.routes_dict']."""
        return WSGIController.__call__(self, environ, start_response)
