"""The keywords every run function shares, converted for the native side: the configuration, ``plugins=``,
``set=``, ``progress=``; and matplotlib for ``plot()``."""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

PathLike = Union[str, "os.PathLike[str]"]
Config = Union[PathLike, Mapping[str, Any]]
ProgressArg = Union[None, bool, Callable[[int, int], Any]]


def config(config: Config) -> Any:
    """A configuration for the native side: a dict as it is, anything else as a path."""
    if isinstance(config, Mapping):
        return dict(config)
    return os.fspath(config)


def plugins(plugins: Optional[Sequence[PathLike]]) -> list:
    """``plugins=``: plugin files or directories searched first (the CLI's ``--plugin``)."""
    return [os.fspath(p) for p in (plugins or [])]


def sets(set: Optional[Mapping[str, float]]) -> Optional[dict]:
    """``set=``: parameter overrides by name (the CLI's ``--set``)."""
    if set is None:
        return None
    if not isinstance(set, Mapping):
        raise TypeError(f"set must be a dict of parameter name -> value (got {type(set).__name__})")
    return {str(name): value for name, value in set.items()}


class Progress:
    """The ``progress=`` keyword as the callable the engine reports ``(done, total)`` to: a tqdm.auto bar shown
    after a second (``None`` or ``True``, when tqdm is installed), nothing (``False``), or the caller's callable.
    Use as a context manager, which closes the bar."""

    def __init__(self, progress: ProgressArg, unit: str):
        self.bar = None
        self.callback: Optional[Callable[[int, int], Any]] = None
        if progress is None or progress is True:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - tqdm is optional
                return
            self.bar = tqdm(total=None, delay=1, unit=unit, leave=False)
            self.callback = self._update
        elif progress is False:
            return
        elif callable(progress):
            self.callback = progress
        else:
            raise TypeError(f"progress must be None, False or a callable(done, total) (got {type(progress).__name__})")

    def _update(self, done: int, total: int) -> None:
        bar = self.bar
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    def __enter__(self) -> Optional[Callable[[int, int], Any]]:
        return self.callback

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()


def matplotlib():
    """``matplotlib.pyplot``, or an ImportError saying how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is optional
        raise ImportError("plot() needs matplotlib: pip install matplotlib") from e
    return plt
