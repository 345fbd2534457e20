"""Builds the Pylons configuration object for wh_pylons."""
import os

from mako.lookup import TemplateLookup
from pylons.configuration import PylonsConfig
from pylons.error import handle_mako_error

import wh_pylons.lib.app_globals as app_globals
import wh_pylons.lib.helpers
from wh_pylons.config.routing import make_map


def load_environment(global_conf, app_conf):
    """Return a PylonsConfig set up for this package from the ini file's settings."""
    config = PylonsConfig()

    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = {
        'root': package_dir,
        'controllers': os.path.join(package_dir, 'controllers'),
        'static_files': os.path.join(package_dir, 'public'),
        'templates': [os.path.join(package_dir, 'templates')],
    }
    config.init_app(global_conf, app_conf, package='wh_pylons', paths=paths)

    config['routes.map'] = make_map(config)
    config['pylons.app_globals'] = app_globals.Globals(config)
    config['pylons.h'] = wh_pylons.lib.helpers

    # Templates are compiled in memory (no module_directory), so nothing is written to disk.
    # As in every Pylons 1.0 project, ${...} output is escaped through MarkupSafe.
    config['pylons.app_globals'].mako_lookup = TemplateLookup(
        directories=paths['templates'],
        error_handler=handle_mako_error,
        input_encoding='utf-8',
        default_filters=['escape'],
        imports=['from markupsafe import escape'],
    )
    return config
