"""The WSGI stack of wh_pylons, built by PasteDeploy from development.ini."""
from paste.cascade import Cascade
from paste.deploy.converters import asbool
from paste.registry import RegistryManager
from paste.urlparser import StaticURLParser
from pylons.middleware import ErrorHandler
from pylons.wsgiapp import PylonsApp
from routes.middleware import RoutesMiddleware

from wh_pylons.config.environment import load_environment


def make_app(global_conf, full_stack=True, static_files=True, **app_conf):
    """Return the Pylons application wrapped in its middleware.

    No SessionMiddleware or CacheMiddleware: the app keeps no session and its cache
    lives in memory. With debug = false, ErrorHandler is WebError's plain error
    middleware (the traceback goes to wsgi.errors), never the interactive debugger.
    """
    config = load_environment(global_conf, app_conf)

    app = PylonsApp(config=config)
    app = RoutesMiddleware(app, config['routes.map'], singleton=False)

    if asbool(full_stack):
        app = ErrorHandler(app, global_conf, **config['pylons.errorware'])

    app = RegistryManager(app)

    if asbool(static_files):
        app = Cascade([StaticURLParser(config['pylons.paths']['static_files']), app])

    app.config = config
    return app
