"""Types of parfit's extension module (the Rust side). The public API is the package ``parfit``."""

from typing import Any, Callable

class ParfitError(Exception): ...
class ConfigError(ParfitError): ...
class ModelError(ParfitError): ...
class RunError(ParfitError): ...

def set_bundled_plugins(dir: str) -> None: ...
def plugins(paths: list[str] = ...) -> list[dict[str, Any]]: ...
def default_threads() -> int: ...
def sample(
    config: str | dict[str, Any],
    *,
    data: str | None = ...,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    threads: int | None = ...,
    plugins: list[str] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
def run_kind(config: str | dict[str, Any], *, files: dict[str, str] = ...) -> str: ...
def run_model(
    config: str | dict[str, Any],
    *,
    times: str | None = ...,
    set: dict[str, float] | None = ...,
    plugins: list[str] = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
def run_montecarlo(
    config: str | dict[str, Any],
    *,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    threads: int | None = ...,
    plugins: list[str] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
def project(
    config: str | dict[str, Any],
    *,
    model_points: str | None = ...,
    threads: int | None = ...,
    plugins: list[str] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
