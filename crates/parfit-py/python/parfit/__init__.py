"""parfit: fit and run many models in parallel, from Python.

The same engine as the ``parfit`` command line and the browser page: a configuration (a TOML file, or the
same structure as a dict) gives the CLI's numbers bit for bit for the same seed. Models come from plugins:
the ones bundled with this package (DiffSL ``.ds``, Vensim ``.mdl``, Monte Carlo ``.mc``, actuarial
projections), then any found along ``PARFIT_PLUGIN_PATH`` or named with ``plugins=``.

The engine runs with the GIL released on its own thread pool; Ctrl-C (KeyboardInterrupt) stops a run
cleanly. Errors are :class:`ConfigError` (bad configuration or data, located at ``file:line:column``),
:class:`ModelError` (a model file's error) and :class:`RunError` (a run that produced nothing).
"""

from __future__ import annotations

import os as _os

from . import _native
from ._minimise import MinimiseResult, minimise
from ._model import Model, MonteCarloModel
from ._native import ConfigError, ModelError, ParfitError, RunError
from ._fit import FitManyResult, FitResult, fit, fit_many
from ._run import MonteCarloResult, ProjectionResult, project, run
from ._sample import SampleResult, sample

_native.set_bundled_plugins(_os.path.join(_os.path.dirname(__file__), "plugins"))

__version__ = "0.1.0"


def plugins(paths=None):
    """The plugins parfit finds, in search order: each a dict with ``name``, ``version``, ``path`` and
    ``kinds`` (each with ``kind``, ``extensions`` and ``description``).

    ``paths`` are plugin files or directories searched first (as the CLI's ``--plugin``)."""
    return _native.plugins([_os.fspath(p) for p in (paths or [])])


__all__ = [
    "ConfigError",
    "FitManyResult",
    "FitResult",
    "MinimiseResult",
    "Model",
    "ModelError",
    "MonteCarloModel",
    "MonteCarloResult",
    "ParfitError",
    "ProjectionResult",
    "RunError",
    "SampleResult",
    "fit",
    "fit_many",
    "minimise",
    "plugins",
    "project",
    "run",
    "sample",
]
