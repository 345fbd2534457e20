"""Cells: the environments runs happen in (an interpreter, mod_wsgi compiled against an Apache, or nothing for
the embedding driver), built once into the cache, with the server user proven able to run them."""
