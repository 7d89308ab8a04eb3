"""The plugin engine: what a plugin declares, and how plugins are found.

A plugin is a class with a ``name`` (crash's name where one exists), a
one-line ``help``, a longer ``description`` with an example, its
``options``, and its ``needs``.  The engine checks the needs against an
opened :class:`~analyzer.session.Session` and either runs the plugin or says
plainly why it cannot run on that dump.

Plugins come from the ``plugins`` package (built in) and from any installed
distribution that registers classes under the ``vmcrash.plugins`` entry
point group::

    [project.entry-points."vmcrash.plugins"]
    mything = "mypackage.plugins:MyThing"
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .results import Result

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Plugin", "Option", "Need", "PluginError", "CannotRun", "discover", "parse_int", "resolve_address"]


class PluginError(Exception):
    """A plugin could not do what was asked (bad argument, unreadable target)."""


class CannotRun(PluginError):
    """The plugin's needs are not met by this dump."""


@dataclass(frozen=True)
class Need:
    """Something a plugin needs; ``check`` returns None when met, else why not."""

    name: str
    check: Callable[["Session"], str | None]


def parse_int(text: str) -> int:
    """An integer as users type them: 0x-prefixed hex, or decimal; bare hex
    with a-f digits is accepted too (crash's habit)."""
    t = text.strip().lower().replace("_", "")
    try:
        if t.startswith(("0x", "-0x")):
            return int(t, 16)
        try:
            return int(t, 10)
        except ValueError:
            return int(t, 16)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def resolve_address(session: "Session", text: str | int) -> int:
    """An address as the user gave it: a number, or a kernel symbol with an
    optional offset (``schedule``, ``init_task+0x10``), looked up in the
    selected domain's kernel (vmlinux or kallsyms)."""
    if isinstance(text, int):
        return text
    try:
        return parse_int(text)
    except ValueError:
        pass
    name, _, off = text.partition("+")
    try:
        offset = parse_int(off) if off else 0
    except ValueError:
        raise PluginError(f"bad offset in {text!r}") from None
    if not session.domain.is_linux:
        raise PluginError(f"{text!r} is not a number, and there is no kernel to look symbols up in")
    try:
        return int(session.linux().prog.symbol(name.strip()).address) + offset
    except LookupError:
        raise PluginError(f"no symbol {name!r} in this kernel") from None


@dataclass(frozen=True)
class Option:
    """One option of a plugin, for both the command line and the Python API.

    ``name`` is the keyword ``run`` receives; on the command line it is a
    positional argument if ``positional``, else ``--name`` (a flag when
    ``type`` is bool).
    """

    name: str
    help: str
    type: Callable[[str], Any] | type = str
    default: Any = None
    positional: bool = False
    required: bool = False
    metavar: str | None = None
    choices: Sequence[Any] | None = None


class Plugin(ABC):
    """Base class of every plugin.  Subclasses set the class attributes and
    implement :meth:`run`."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    needs: ClassVar[tuple[Need, ...]] = ()

    @abstractmethod
    def run(self, session: "Session", **options: Any) -> Result:
        """Compute the result; never print."""

    @classmethod
    def why_not(cls, session: "Session", options: dict[str, Any] | None = None) -> str | None:
        """None if the plugin can run on ``session`` (with ``options``, when
        they change what it needs), else the first unmet need."""
        for need in cls.needs:
            reason = need.check(session)
            if reason:
                return f"needs {need.name}: {reason}"
        return None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {o.name: o.default for o in cls.options}


def _builtin_plugins() -> list[type[Plugin]]:
    import plugins as builtin

    found: list[type[Plugin]] = []
    for mod in pkgutil.iter_modules(builtin.__path__):
        module = importlib.import_module(f"plugins.{mod.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Plugin) and obj.name and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def _entry_point_plugins(errors: list[str]) -> list[type[Plugin]]:
    found: list[type[Plugin]] = []
    for ep in importlib.metadata.entry_points(group="vmcrash.plugins"):
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken third-party plugin must not stop vmcrash
            errors.append(f"plugin {ep.name!r} ({ep.value}) failed to load: {e}")
            continue
        if isinstance(obj, type) and issubclass(obj, Plugin) and obj.name:
            found.append(obj)
        else:
            errors.append(f"entry point {ep.name!r} ({ep.value}) is not a vmcrash Plugin class")
    return found


def discover(errors: list[str] | None = None) -> dict[str, type[Plugin]]:
    """Every plugin by name: built-ins first; a third-party plugin may not
    take a built-in's name (it is reported in ``errors`` instead)."""
    errs = errors if errors is not None else []
    table: dict[str, type[Plugin]] = {}
    for cls in _builtin_plugins():
        table[cls.name] = cls
    for cls in _entry_point_plugins(errs):
        if cls.name in table and table[cls.name] is not cls:
            errs.append(f"plugin {cls.name!r} from {cls.__module__} clashes with a built-in; ignored")
            continue
        table[cls.name] = cls
    return dict(sorted(table.items()))
