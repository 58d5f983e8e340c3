"""README's configuration block is the settings as `cove/config.py` defines them: every section and key, no other,
each at its default (read by the real loader, so a key README invents is an error here too)."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from cove.config import CoveConfig, load_config

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block() -> str:
    text = README.read_text()
    section = text[text.index("## Configuration") :]
    found = re.search(r"```toml\n(.*?)```", section, re.S)
    assert found, "README's Configuration section has no toml block"
    return found.group(1)


def test_every_setting_is_in_readme_and_nothing_else() -> None:
    shown = tomllib.loads(readme_block())
    defaults = CoveConfig()
    defined = {
        f.name: {g.name for g in dataclasses.fields(getattr(defaults, f.name))} for f in dataclasses.fields(defaults)
    }
    assert set(shown) == set(defined), (
        f"sections: README lacks {set(defined) - set(shown)}, adds {set(shown) - set(defined)}"
    )
    for section, keys in defined.items():
        assert set(shown[section]) == keys, (section, keys - set(shown[section]), set(shown[section]) - keys)


def test_readme_shows_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "cove").mkdir()
    (tmp_path / "cove" / "config.toml").write_text(readme_block())
    loaded = load_config(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert loaded.config == CoveConfig()
