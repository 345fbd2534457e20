# mod_wsgi entry point: a Pyramid app loaded through PasteDeploy, as a Pyramid project's
# production.wsgi does. Paths come from this file's location because the harness runs a private
# copy of the scenario folder; the app module sits beside this script, so no egg is installed.
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
if here not in sys.path:
    sys.path.insert(0, here)

from paste.deploy import loadapp

application = loadapp("config:" + os.path.join(here, "app.ini"))
