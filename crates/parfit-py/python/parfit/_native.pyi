"""Types of parfit's extension module (the Rust side). The public API is the package ``parfit``."""

from typing import Any, Callable, Optional, Union
from os import PathLike

class ParfitError(Exception): ...
class ConfigError(ParfitError): ...
class ModelError(ParfitError): ...
class RunError(ParfitError): ...

def set_bundled_plugins(dir: str) -> None: ...
def plugins(paths: list[str] = ...) -> list[dict[str, Any]]: ...
def default_threads() -> int: ...
def fit(
    config: Union[str, PathLike[str], dict[str, Any]],
    *,
    files: dict[str, str],
    data: Optional[str] = ...,
    algorithm: Optional[str] = ...,
    sets: list[tuple[str, float]] = ...,
    seed: Optional[int] = ...,
    threads: Optional[int] = ...,
    plugins: list[str] = ...,
    progress: Optional[Callable[[int, int], Any]] = ...,
    history: Optional[bool] = ...,
) -> dict[str, Any]: ...
def fit_many(
    config: Union[str, PathLike[str], dict[str, Any]],
    *,
    files: dict[str, str],
    cases: Optional[str] = ...,
    output: Optional[str] = ...,
    resume: bool = ...,
    algorithm: Optional[str] = ...,
    sets: list[tuple[str, float]] = ...,
    seed: Optional[int] = ...,
    threads: Optional[int] = ...,
    plugins: list[str] = ...,
    progress: Optional[Callable[[int, int], Any]] = ...,
) -> dict[str, Any]: ...
