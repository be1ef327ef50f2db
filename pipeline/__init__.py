"""Life is Artificial: a podcast production pipeline.

The stages, one module each: parse (``script``) -> speech text (``speech``) ->
synthesize (``synthesize``, with ``engines``) -> assemble (``assemble``) ->
master (``master``) -> package (``package``). ``render`` runs them in order.
"""

__version__ = "0.1.0"
