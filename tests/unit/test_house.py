"""The house rules hold for mmsgate, and the checker sees each kind of breach (tests/house.py)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import mmsgate
from mmsgate.core import roles
from tests.house import MAX_LINES, Violation, check

PACKAGE = Path(mmsgate.__file__).parent


def test_mmsgate_keeps_the_house_rules() -> None:
    violations = check(PACKAGE)
    assert violations == [], "\n".join(str(v) for v in violations)


def test_an_api_process_loads_no_worker_libraries() -> None:
    heavy = ("PIL", "av", "lxml", "aiohttp", "aiosmpplib")
    code = f"import mmsgate.app, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "[]"


def house(tmp_path: Path, files: dict[str, str]) -> list[Violation]:
    """The violations of a made-up package ``mmsgate`` holding ``files`` (path → source)."""
    root = tmp_path / "mmsgate"
    for name, source in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for folder in path.relative_to(root).parents:
            (root / folder / "__init__.py").touch()
        path.write_text(source)
    return check(root)


def rules(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


def test_a_clean_house_passes(tmp_path: Path) -> None:
    assert (
        house(
            tmp_path,
            {
                "core/model.py": "X = 1\n",
                "store/sql.py": "from mmsgate.core.model import X\nfrom mmsgate import errors\n",
                "errors.py": "",
                "carriers/base.py": "from mmsgate.core import model\n",
                "api/endpoint.py": "from mmsgate.store.sql import X\n",
                "client/__init__.py": "from mmsgate import __version__\nfrom mmsgate.core.model import X\n",
            },
        )
        == []
    )


@pytest.mark.parametrize(
    ("files", "rule"),
    [
        ({"a/x.py": "from mmsgate.b.y import Y\n", "b/y.py": "def f():\n    from mmsgate.a import x\n"}, "cycle"),
        ({"cli.py": "from mmsgate import cli_more\n", "cli_more.py": "from mmsgate.cli import main\n"}, "cycle"),
        ({"carriers/x.py": "from mmsgate.store import Store\n", "store/__init__.py": "Store = 1\n"}, "carriers-store"),
        (
            {"store/x.py": "from mmsgate.delivery.engine import Delivery\n", "delivery/engine.py": ""},
            "store-above-core",
        ),
        ({"api/x.py": "import mmsgate.media.stage\n", "media/stage.py": ""}, "api-worker"),
        ({"api/x.py": "def f():\n    from mmsgate.runtime import run\n", "runtime.py": ""}, "api-worker"),
        ({"client/x.py": "from mmsgate.api.auth import A\n", "api/auth.py": "A = 1\n"}, "client-server"),
        ({"big.py": "x = 1\n" * (MAX_LINES + 1)}, "size"),
        (
            {
                "carriers/sandbox/__init__.py": 'KIND = "sandbox"\n',
                "delivery/x.py": "def f(c):\n    return c.name == 'sandbox'\n",
            },
            "carrier-check",
        ),
        (
            {
                "carriers/sandbox/carrier.py": "class SandboxCarrier:\n    pass\n",
                "runtime.py": "def f(c):\n    return isinstance(c, SandboxCarrier)\n",
            },
            "carrier-check",
        ),
    ],
)
def test_each_breach_is_found(tmp_path: Path, files: dict[str, str], rule: str) -> None:
    assert rule in rules(house(tmp_path, files))


def test_a_plugin_may_name_itself(tmp_path: Path) -> None:
    files = {"carriers/sandbox/x.py": "class SandboxCarrier:\n    pass\n\ndef f(s):\n    return s == 'sandbox'\n"}
    assert house(tmp_path, files) == []


def test_every_store_role_is_narrow() -> None:
    """A constructor takes one of these roles, never the whole store: each stays under 20 methods."""
    protocols = [cls for _, cls in inspect.getmembers(roles, inspect.isclass) if cls.__module__ == roles.__name__]
    assert len(protocols) >= 10
    for protocol in protocols:
        methods = [name for name, _ in inspect.getmembers(protocol, inspect.isfunction) if not name.startswith("_")]
        assert 0 < len(methods) <= 20, (protocol.__name__, methods)
