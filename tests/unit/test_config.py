import dataclasses
import json
from pathlib import Path

import pytest

from cove.config import CoveConfig, find_project_root, load_config
from cove.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    loaded = load_config(None, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert loaded.config == CoveConfig()
    assert loaded.sources == ()


def test_layers_apply_in_order_user_project_env_editor(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    write(tmp_path / "xdg/cove/config.toml", "[completion]\nmax_tokens = 10\nmax_block_lines = 3\n")
    project = tmp_path / "project"
    write(project / ".cove/config.toml", "[completion]\nmax_tokens = 20\nmultiline = 'never'\n")
    env["COVE_COMPLETION_MULTILINE"] = "always"
    loaded = load_config(project, env, {"completion": {"time_budget_ms": 50}})
    completion = loaded.config.completion
    assert (completion.max_block_lines, completion.max_tokens) == (3, 20)
    assert completion.multiline == "always"
    assert completion.time_budget_ms == 50
    assert loaded.sources[-1] == "editor settings"
    assert "environment variable COVE_COMPLETION_MULTILINE" in loaded.sources


def test_env_values_are_typed(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "COVE_COMPLETION_REUSE_SUGGESTIONS": "false", "COVE_MODEL_N_CTX": "2048"}
    config = load_config(None, env).config
    assert config.completion.reuse_suggestions is False
    assert config.model.n_ctx == 2048


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[completion]\nmax_tokenz = 3\n", "unknown key 'completion.max_tokenz' (did you mean 'max_tokens'?)"),
        ("[complete]\n", "unknown section 'complete'"),
        ("[completion]\nmax_tokens = '3'\n", "'completion.max_tokens' must be an integer, got '3'"),
        ("[completion]\nreuse_suggestions = 1\n", "'completion.reuse_suggestions' must be true or false"),
        ("[completion]\nmultiline = 'sometimes'\n", "must be one of 'auto', 'never', 'always'"),
        ("[completion]\nmax_tokens = -1\n", "must not be negative"),
        ("[completion\n", "invalid TOML"),
        ("completion = 3\n", "'completion' must be a table"),
    ],
)
def test_bad_project_file_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / ".cove/config.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_bad_env_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="environment variable COVE_COMPLETION_BOGUS: unknown key"):
        load_config(None, {"XDG_CONFIG_HOME": str(tmp_path), "COVE_COMPLETION_BOGUS": "1"})


def test_bad_editor_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"editor settings: .model\.n_ctx. must be an integer"):
        load_config(None, {"XDG_CONFIG_HOME": str(tmp_path)}, {"model": {"n_ctx": "big"}})


def test_unreadable_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / ".cove/config.toml").mkdir(parents=True)
    # A directory where the file should be: is_file() is false, so the layer is skipped rather than crashing.
    assert load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "x")}).sources == ()
    write(tmp_path / "y/cove/config.toml", "\xff".encode("latin-1").decode("latin-1"))
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "y")})
    # A file that opens but cannot be read (even by root, unlike one without permissions): its reading fails.
    (tmp_path / "z/cove").mkdir(parents=True)
    (tmp_path / "z/cove/config.toml").symlink_to("/proc/self/mem")
    with pytest.raises(ConfigError, match=r"z/cove/config\.toml: cannot read config file \(Input/output error\)"):
        load_config(None, {"XDG_CONFIG_HOME": str(tmp_path / "z")})


def test_project_root_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "a/b"
    sub.mkdir(parents=True)
    assert find_project_root(sub) == tmp_path


def test_lists_become_tuples_and_must_hold_strings(tmp_path: Path) -> None:
    write(tmp_path / ".cove/config.toml", "[routing]\nplan = ['local']\n[reminders]\ndisabled = ['stale_todos']\n")
    config = load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "none")}).config
    assert config.routing.plan == ("local",) and config.reminders.disabled == ("stale_todos",)
    write(tmp_path / ".cove/config.toml", "[routing]\nplan = [1]\n")
    with pytest.raises(ConfigError, match=r"'routing\.plan' must be a list of strings"):
        load_config(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "none")})


def test_the_sandbox_is_set_by_the_user_only_never_by_the_project(tmp_path: Path) -> None:
    """A cloned repository's .cove/config.toml must not loosen its own sandbox; the user's file, COVE_SANDBOX_* and
    the editor's settings may."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    write(tmp_path / "xdg/cove/config.toml", "[sandbox]\nread = ['~/datasets']\n")
    project = tmp_path / "project"
    assert load_config(project, env).config.sandbox.read == ("~/datasets",)
    assert load_config(project, env | {"COVE_SANDBOX_NETWORK": "loopback"}).config.sandbox.network == "loopback"
    assert load_config(project, env, {"sandbox": {"network": "full"}}).config.sandbox.network == "full"
    write(project / ".cove/config.toml", "[sandbox]\nnetwork = 'full'\nwrite = ['~']\n")
    with pytest.raises(ConfigError, match=r"\[sandbox\] is read from your own config only.*loosen its sandbox"):
        load_config(project, env)


@pytest.mark.parametrize("section", ["daemon", "events"])
def test_the_hosts_sections_are_refused_in_a_project_and_in_the_editor_saying_where_they_belong(
    tmp_path: Path, section: str
) -> None:
    """The daemon serves every project and editor at once: a project's file or an editor that sets `[daemon]` or
    `[events]` is told where they belong, never silently ignored; the user's file and the environment set them."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    key, value = {"daemon": ("model_memory_mib", 512), "events": ("mqtt_port", 1884)}[section]
    write(tmp_path / "xdg/cove/config.toml", f"[{section}]\n{key} = {value}\n")
    project = tmp_path / "project"
    assert getattr(getattr(load_config(project, env).config, section), key) == value
    variable = f"COVE_{section.upper()}_{key.upper()}"
    assert getattr(getattr(load_config(project, env | {variable: "99"}).config, section), key) == 99
    user_file = tmp_path / "xdg/cove/config.toml"
    where = rf"configures the Cove daemon.*set it in your own config \({user_file}\) or COVE_{section.upper()}_\*"
    with pytest.raises(ConfigError, match=rf"^editor settings: \[{section}\] {where}"):
        load_config(project, env, {section: {key: value}})
    write(project / ".cove/config.toml", f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=rf"config.toml: \[{section}\] {where}"):
        load_config(project, env)


def test_each_setting_says_which_layer_chose_it(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "COVE_MODEL_N_CTX": "2048"}
    user = write(tmp_path / "xdg/cove/config.toml", "[model]\npath = '/models/a.gguf'\nkv_type = 'q8_0'\n")
    project = tmp_path / "project"
    mine = write(project / ".cove/config.toml", "[model]\npath = '/models/b.gguf'\n")
    loaded = load_config(project, env, {"model": {"kv_type": "q4_0"}})
    assert loaded.origin("model.path") == str(mine)
    assert loaded.origin("model.n_ctx") == "environment variable COVE_MODEL_N_CTX"
    assert loaded.origin("model.kv_type") == "editor settings"
    assert loaded.origin("model.swa_full") == "the default"
    assert load_config(None, env).origin("model.path") == str(user)


def _another_value(value: object) -> object:
    """A valid value of the same type as `value` that differs from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, tuple):
        return [*value, "x"] if not value or isinstance(value[0], str) else list(value)
    return f"{value}x" if isinstance(value, str) else value


#: The (section, layer) pairs that refuse a setting, saying where it belongs; every other pair applies it.
REFUSED = {
    ("sandbox", "project"),
    ("daemon", "project"),
    ("daemon", "editor"),
    ("events", "project"),
    ("events", "editor"),
}
#: Fields whose values are checked against a set of choices: a valid other value for each.
CHOICES = {
    "model.kv_type": "q8_0",
    "model.overflow": "structure",
    "completion.multiline": "always",
    "completion.fim_order": "spm",
    "agent.mode": "ask",
    "remote.completion_api": "llama-server",
    "sandbox.network": "loopback",
}


@pytest.mark.parametrize("layer", ["user", "project", "environment", "editor"])
@pytest.mark.parametrize("section", [f.name for f in dataclasses.fields(CoveConfig)])
def test_every_section_on_every_layer_applies_or_is_refused_never_ignored(
    tmp_path: Path, section: str, layer: str
) -> None:
    field = dataclasses.fields(getattr(CoveConfig(), section))[0]
    default = getattr(getattr(CoveConfig(), section), field.name)
    value = CHOICES.get(f"{section}.{field.name}", _another_value(default))
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    project = tmp_path / "project"
    toml = f"[{section}]\n{field.name} = {json.dumps(value)}\n"
    editor = None
    if layer == "user":
        write(tmp_path / "xdg/cove/config.toml", toml)
    elif layer == "project":
        write(project / ".cove/config.toml", toml)
    elif layer == "environment":
        env[f"COVE_{section.upper()}_{field.name.upper()}"] = json.dumps(value)
    else:
        editor = {section: {field.name: value}}
    if (section, layer) in REFUSED:
        with pytest.raises(ConfigError, match=rf"\[{section}\]"):
            load_config(project, env, editor)
        return
    loaded = load_config(project, env, editor)
    got = getattr(getattr(loaded.config, section), field.name)
    assert got == (tuple(value) if isinstance(value, list) else value) != default, (got, value, default)
    assert loaded.origin(f"{section}.{field.name}") != "the default"
