"""Progress bars for long loops: rollouts, benchmark cells, collection, index builds, encoding.

Every long-running entry point takes ``show_progress: bool | None = None`` and opens its bar
through :func:`progress`, a thin wrapper of tqdm. Whether a bar shows is decided, first
match wins, by:

1. the call's own ``show_progress`` argument (``True`` / ``False``);
2. :func:`set_progress` (a process-wide switch, e.g. in a notebook's first cell);
3. the ``RAGGYM_PROGRESS`` environment variable: ``0``/``false``/``off``/``no`` turn bars
   off, ``1``/``true``/``on``/``yes`` force them on;
4. otherwise ("auto"): on when stderr is a terminal or the code runs in a Jupyter kernel,
   off elsewhere (pipes, log files, pytest's captured output).

Bars are written to stderr (or drawn as a widget in Jupyter when ipywidgets is installed),
never to stdout, so machine-readable output on stdout stays clean. A bar never changes
what a loop computes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

__all__ = [
    "PROGRESS_ENV",
    "Progress",
    "progress",
    "progress_enabled",
    "progress_setting",
    "set_progress",
]

PROGRESS_ENV = "RAGGYM_PROGRESS"
"""The environment variable that switches progress bars on or off for a process."""

_OFF = frozenset({"0", "false", "off", "no"})
_ON = frozenset({"1", "true", "on", "yes"})
_override: bool | None = None

T = TypeVar("T")


def set_progress(enabled: bool | None) -> None:
    """Switch bars on or off for this process; ``None`` restores the default decision."""
    global _override
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_progress expects True, False or None, got {enabled!r}")
    _override = enabled


@contextmanager
def progress_setting(enabled: bool | None) -> Iterator[None]:
    """Within the block, bars follow ``enabled`` as :func:`set_progress` would; restored after.

    ``None`` leaves the current decision alone (a command run without ``--progress`` or
    ``--no-progress``).
    """
    global _override
    previous = _override
    if enabled is not None:
        set_progress(enabled)
    try:
        yield
    finally:
        _override = previous


def _in_notebook() -> bool:
    """Whether the code runs inside a Jupyter (IPython) kernel."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - any failure means "not a kernel"
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _stderr_is_tty() -> bool:
    try:
        return bool(sys.stderr is not None and sys.stderr.isatty())
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def progress_enabled(enabled: bool | None = None) -> bool:
    """Whether a bar shows, given a call's own ``show_progress`` argument (see the module)."""
    if enabled is not None:
        return bool(enabled)
    if _override is not None:
        return _override
    setting = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if setting in _OFF:
        return False
    if setting in _ON:
        return True
    return _stderr_is_tty() or _in_notebook()


def _bar_class() -> Any:
    """The bar class: a widget in Jupyter when ipywidgets is installed, else the text bar."""
    if _in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as notebook_tqdm  # type: ignore[import-untyped]

        return notebook_tqdm
    from tqdm.std import tqdm as text_tqdm  # type: ignore[import-untyped]

    return text_tqdm


class Progress(Generic[T]):
    """A progress bar (or a silent stand-in) that can wrap an iterable or be updated by hand.

    Use it as ``for item in progress(items): ...`` or
    ``with progress(total=n) as bar: ... bar.update(k)``.
    """

    def __init__(
        self,
        iterable: Iterable[T] | None,
        *,
        total: int | None,
        desc: str | None,
        unit: str,
        enabled: bool,
    ) -> None:
        self._iterable = iterable
        self.enabled = enabled
        self._bar: Any = None
        if enabled:
            self._bar = _bar_class()(
                iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True
            )

    def __iter__(self) -> Iterator[T]:
        if self._iterable is None:
            raise TypeError("this progress bar wraps no iterable; call update() instead")
        if self._bar is not None:
            yield from self._bar
        else:
            yield from self._iterable

    def update(self, n: int = 1) -> None:
        """Advance the bar by ``n`` items."""
        if self._bar is not None:
            self._bar.update(n)

    def set_postfix(self, **values: Any) -> None:
        """Show ``key=value`` pairs after the bar (e.g. failures so far)."""
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def close(self) -> None:
        """Finish the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@overload
def progress(
    iterable: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool | None = None,
) -> Progress[T]: ...


@overload
def progress(
    iterable: None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool | None = None,
) -> Progress[Any]: ...


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    enabled: bool | None = None,
) -> Progress[Any]:
    """A progress bar over ``iterable`` (or one to :meth:`Progress.update` by hand).

    Args:
        iterable: what to iterate over; ``None`` for a bar advanced by ``update``.
        total: the number of items (taken from ``len(iterable)`` when it has one).
        desc: the label before the bar.
        unit: what one item is called (``"episode"``, ``"doc"``).
        enabled: the call's ``show_progress`` argument; ``None`` decides as the module says.
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return Progress(iterable, total=total, desc=desc, unit=unit, enabled=progress_enabled(enabled))
