"""Types of parfit's extension module (the Rust side). The public API is the package ``parfit``."""

from os import PathLike
from typing import Any, Callable, Mapping, Sequence, Union

# A path as the Rust side takes it (a `PathBuf`), and a configuration: a TOML file's path or the parsed table.
StrPath = Union[str, PathLike[str]]
Config = Union[StrPath, dict[str, Any]]

class ParfitError(Exception): ...
class ConfigError(ParfitError): ...
class ModelError(ParfitError): ...
class RunError(ParfitError): ...

def set_bundled_plugins(dir: str) -> None: ...
def plugins(paths: list[StrPath] = ...) -> list[dict[str, Any]]: ...
def default_threads() -> int: ...

class NativeModel:
    def __init__(
        self,
        path: str | None = ...,
        *,
        kind: str | None = ...,
        plugin: str | None = ...,
        plugins: list[StrPath] = ...,
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
        plugins: list[StrPath] = ...,
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
) -> dict[str, Any]: ...
def fit(
    config: Config,
    *,
    files: dict[str, str],
    data: StrPath | None = ...,
    algorithm: str | None = ...,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    threads: int | None = ...,
    plugins: list[StrPath] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    history: bool | None = ...,
) -> dict[str, Any]: ...
def fit_many(
    config: Config,
    *,
    files: dict[str, str],
    cases: StrPath | None = ...,
    output: StrPath | None = ...,
    resume: bool = ...,
    algorithm: str | None = ...,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    threads: int | None = ...,
    plugins: list[StrPath] = ...,
    progress: Callable[[int, int], Any] | None = ...,
) -> dict[str, Any]: ...
def sample(
    config: Config,
    *,
    data: str | None = ...,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    threads: int | None = ...,
    plugins: list[StrPath] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
def run_kind(config: Config, *, files: dict[str, str] = ...) -> str: ...
def run_model(
    config: Config,
    *,
    times: str | None = ...,
    set: dict[str, float] | None = ...,
    plugins: list[StrPath] = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
def run_montecarlo(
    config: Config,
    *,
    set: dict[str, float] | None = ...,
    seed: int | None = ...,
    threads: int | None = ...,
    plugins: list[StrPath] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
def project(
    config: Config,
    *,
    model_points: str | None = ...,
    threads: int | None = ...,
    plugins: list[StrPath] = ...,
    progress: Callable[[int, int], Any] | None = ...,
    files: dict[str, str] = ...,
) -> dict[str, Any]: ...
