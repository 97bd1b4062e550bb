"""Types of parfit's extension module (the Rust side). The public API is the package ``parfit``."""

from typing import Any, Callable, Mapping, Optional, Sequence, Union
from os import PathLike

class ParfitError(Exception): ...
class ConfigError(ParfitError): ...
class ModelError(ParfitError): ...
class RunError(ParfitError): ...

def set_bundled_plugins(dir: str) -> None: ...
def plugins(paths: list[str] = ...) -> list[dict[str, Any]]: ...
def default_threads() -> int: ...

class NativeModel:
    def __init__(
        self,
        path: str | None = ...,
        *,
        kind: str | None = ...,
        plugin: str | None = ...,
        plugins: list[str] = ...,
        options: dict[str, Any] | None = ...,
    ) -> None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def plugin(self) -> str: ...
    @property
    def has_sensitivities(self) -> bool: ...
    @property
    def spec(self) -> dict[str, Any]: ...
    def simulate(
        self,
        params: Mapping[str, float] | Sequence[float] | None = ...,
        times: bytes | None = ...,
        inputs: Mapping[str, float] | Sequence[float] | None = ...,
    ) -> tuple[bytes, int, int]: ...
    def sensitivities(
        self,
        params: Mapping[str, float] | Sequence[float] | None = ...,
        times: bytes | None = ...,
        inputs: Mapping[str, float] | Sequence[float] | None = ...,
    ) -> tuple[bytes, bytes, int, int, int]: ...

class NativeMonteCarloModel:
    def __init__(
        self,
        path: str | None = ...,
        *,
        kind: str | None = ...,
        plugin: str | None = ...,
        plugins: list[str] = ...,
        options: dict[str, Any] | None = ...,
    ) -> None: ...
    @property
    def path(self) -> str | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def plugin(self) -> str: ...
    @property
    def spec(self) -> dict[str, Any]: ...
    def simulate(
        self,
        params: Mapping[str, float] | Sequence[float] | None = ...,
        *,
        paths: int,
        periods: int,
        seed: int = ...,
        threads: int | None = ...,
        progress: Callable[[int, int], Any] | None = ...,
    ) -> tuple[bytes, int, int]: ...

def minimise(
    evaluate: Callable[[bytes, int, int], Sequence[float]],
    x0: list[float],
    lower: list[float],
    upper: list[float],
    *,
    algorithm: str,
    seed: int,
    threads: int | None = ...,
    options: dict[str, Any] | None = ...,
    max_evaluations: int | None = ...,
    progress: Callable[[int, int], Any] | None = ...,
def fit(
    config: Union[str, PathLike[str], dict[str, Any]],
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
    cases: Optional[str] = ...,
    output: Optional[str] = ...,
    resume: bool = ...,
def sample(
    config: str | dict[str, Any],
    data: str | None = ...,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    files: dict[str, str] = ...,
def run_kind(config: str | dict[str, Any], *, files: dict[str, str] = ...) -> str: ...
def run_model(
    times: str | None = ...,
def run_montecarlo(
def project(
    model_points: str | None = ...,
) -> dict[str, Any]: ...
