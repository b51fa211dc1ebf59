"""Git integration: a long-running clean filter, a textconv driver and their installation.

`python -m jupyter_repro.git` is what git runs, once per git command, so this package imports
nothing at import time: the filter loads only the stripper and the strip policy.
"""
