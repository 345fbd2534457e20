"""URL map of wh_pylons."""
from routes import Mapper


def make_map(config):
    """Every URL the app answers; anything else is a 404."""
    mapper = Mapper(directory=config['pylons.paths']['controllers'],
                    always_scan=config['debug'])
    mapper.minimization = False
    mapper.explicit = False

    mapper.connect('home', '/', controller='hello', action='index')
    mapper.connect('speedups', '/speedups', controller='hello', action='speedups')
    mapper.connect('json', '/json', controller='data', action='index')
    mapper.connect('escape', '/escape', controller='markup', action='index')
    return mapper
