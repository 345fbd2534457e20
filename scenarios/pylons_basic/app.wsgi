# mod_wsgi entry point for the wh_pylons Pylons 1.0 application, laid out as in
# mod_wsgi's "Pylons" integration notes. Paths come from this file's location because
# the harness runs a private copy of the scenario folder.
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.append(here)

egg_cache = os.path.join(here, 'egg-cache')
if not os.path.isdir(egg_cache):
    os.makedirs(egg_cache)
os.environ['PYTHON_EGG_CACHE'] = egg_cache

from paste.deploy import loadapp

application = loadapp('config:' + os.path.join(here, 'development.ini'))
