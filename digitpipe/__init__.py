"""digitpipe: a reproducible DVC pipeline from a folder of digit images to a trained Keras CNN.

The package holds all the logic; the scripts in ``stages/`` only read params and files,
call these functions and write files.
"""

__version__ = "0.1.0"
