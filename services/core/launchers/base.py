"""The launcher interface Core's job controller uses, the job states, and the registry of launchers by name.

A launcher starts a Spark application for a job id Core made (deterministic: submitting the same id twice
returns the first launch instead of starting a second one), and answers later, from the handle string alone, for
the job's state, its log and its cancellation — also from a new launcher object after Core restarted. Domain
code: no gRPC.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from provender.core.launchers.settings import LauncherSettings
from provender.kernel.errors import InvalidArgument
from provender.kernel.jobs.args import JobArgs
from provender.kernel.jobs.status import JobStatus


@dataclass(frozen=True)
class Launched:
    """What submit returns: the handle to store with the job record, and where its log is."""

    handle: str
    log_uri: str


class Launcher(ABC):
    """Runs Spark applications. Implementations register themselves with `register_launcher`."""

    name: ClassVar[str]
    Settings: ClassVar[type[LauncherSettings]]
    # keyword arguments of the constructor that are objects rather than settings (a k8s API client)
    runtime_options: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def submit(self, job_id: str, args: JobArgs) -> Launched:
        """Start the application for `args` as job `job_id`; the same job id again returns the first launch."""

    @abstractmethod
    def status(self, handle: str) -> tuple[JobStatus, str]:
        """The job's state, and why it failed when ERROR ("" otherwise)."""

    @abstractmethod
    def cancel(self, handle: str) -> None:
        """Stop the job (a finished job is left as it is)."""

    @abstractmethod
    def log_uri(self, handle: str) -> str:
        """Where the job's log is (a URI)."""

    def report(self, handle: str) -> dict[str, Any] | None:
        """The summary a finished job reported (rows read, written, ...), or None where this launcher keeps
        none: launchers that can read the job's log override it."""
        return None


_REGISTRY: dict[str, type[Launcher]] = {}
# Launchers that ship with Provender, imported on first use (each module registers its class).
_BUILTIN = {
    "local": "provender.core.launchers.local",
    "standalone": "provender.core.launchers.standalone",
    "k8s": "provender.core.launchers.k8s",
}

L = TypeVar("L", bound=type[Launcher])


def register_launcher(cls: L) -> L:
    _REGISTRY[cls.name] = cls
    return cls


def launcher_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_BUILTIN))


def launcher_class(name: str) -> type[Launcher]:
    if name not in _REGISTRY and name in _BUILTIN:
        try:
            importlib.import_module(_BUILTIN[name])
        except ModuleNotFoundError as e:
            extra = "k8s" if name == "k8s" else "spark"
            raise InvalidArgument(
                "spark_launcher",
                name,
                f"an available launcher ({name} is not installed: {e.name} is missing; "
                f"pip install 'provender[{extra}]')",
            ) from None
    if name not in _REGISTRY:
        raise InvalidArgument("spark_launcher", name, f"one of {', '.join(launcher_names())}")
    return _REGISTRY[name]


def create_launcher(name: str, settings: LauncherSettings | None = None, /, **options: Any) -> Launcher:
    """A launcher by name, with its settings (its `Settings` class) given whole or as keyword options; an
    unknown option or a wrong value is an InvalidArgument naming it. K8s also takes `api_client=`."""
    cls = launcher_class(name)
    runtime = {k: options.pop(k) for k in cls.runtime_options if k in options}
    if settings is None:
        settings = cls.Settings.from_options(name, options)
    elif options:
        raise InvalidArgument(
            f"{name} launcher settings", sorted(options), "settings given whole or as options"
        )
    if not isinstance(settings, cls.Settings):
        raise InvalidArgument(f"{name} launcher settings", type(settings).__name__, cls.Settings.__name__)
    return cls(settings, **runtime)
