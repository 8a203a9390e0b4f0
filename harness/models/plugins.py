"""User plugins: Python code that registers models, named in a suite's ``imports:`` or with ``--import``.

Whatever goes wrong inside a plugin (a syntax error, a missing dependency, an exception, ``sys.exit``, a model
name that is already registered) is one ``ConfigError`` naming the plugin, never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from harness.errors import ConfigError, HarnessError
from harness.models.registry import load_builtins

log = logging.getLogger(__name__)


def import_plugin(spec: str) -> None:
    """Import user code that registers models: a module name or a path to a ``.py`` file (once per process)."""
    load_builtins()  # a plugin's duplicate of a built-in name is then blamed on the plugin
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"plugin file {spec!r} not found; pass a module name or an existing .py path")
        mod_name = f"harness_plugin_{path.stem}_{abs(hash(str(path))) % 10**8}"
        if mod_name in sys.modules:
            return
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[mod_name] = module
        with _blamed_on(spec, mod_name):
            loader_spec.loader.exec_module(module)
    else:
        try:
            found = importlib.util.find_spec(spec)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"plugin module {spec!r} cannot be imported ({exc}); check the name or PYTHONPATH") \
                from None
        if found is None:
            raise ConfigError(f"plugin module {spec!r} cannot be imported (no module named {spec!r}); "
                              "check the name or PYTHONPATH")
        with _blamed_on(spec, spec):
            importlib.import_module(spec)
    log.info("imported plugin %s", spec)


@contextlib.contextmanager
def _blamed_on(spec: str, module_name: str) -> Iterator[None]:
    """Translate anything a plugin's import raises into one line naming the plugin."""
    try:
        yield
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin {spec}: syntax error at line {exc.lineno}: {exc.msg}") from None
    except ModuleNotFoundError as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin {spec}: needs the module {exc.name!r}, which is not installed; "
                          "install it or fix the import") from None
    except HarnessError as exc:
        sys.modules.pop(module_name, None)
        message = str(exc).replace(f"{module_name}.", "its ")
        raise ConfigError(f"plugin {spec}: {message}") from None
    except SystemExit as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin {spec}: called sys.exit({exc.code!r}) at import") from None
    except Exception as exc:  # noqa: BLE001 - user code: any failure is the plugin's, named as such
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin {spec}: raised {type(exc).__name__} at import: {exc}") from None


def import_plugins(specs: list[str] | tuple[str, ...]) -> None:
    for spec in specs:
        import_plugin(spec)
