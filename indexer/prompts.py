"""Query and document templates per embedding-model family, loaded from prompts/*.toml.

The files ship as the package `session_search_prompts` (pyproject maps it to prompts/),
so they are found the same way from a checkout and from a wheel.
"""

from __future__ import annotations

import hashlib
import tomllib
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from indexer.errors import ConfigError

PROMPTS_PACKAGE = "session_search_prompts"


class PromptTemplate(BaseModel):
    """How queries and documents are written before they are embedded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str
    match: list[str] = []
    task: str = ""
    query: str
    document: str
    source: str = ""

    @field_validator("query", "document")
    @classmethod
    def _has_its_slot(cls, value: str, info: ValidationInfo) -> str:
        slot = "{query}" if info.field_name == "query" else "{text}"
        if slot not in value:
            raise ValueError(f"the {info.field_name} template must contain {slot}")
        return value

    def format_query(self, query: str) -> str:
        return self.query.replace("{task}", self.task).replace("{query}", query)

    def format_document(self, text: str) -> str:
        return self.document.replace("{text}", text)

    @property
    def document_hash(self) -> str:
        """Identifies the document template: a change means the index must be rebuilt."""
        return hashlib.sha256(self.document.encode()).hexdigest()[:16]


def _parse(text: str, source: str) -> PromptTemplate:
    try:
        return PromptTemplate.model_validate({**tomllib.loads(text), "source": source})
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"prompt template {source}: {detail}") from None


def builtin_templates() -> list[PromptTemplate]:
    """Every template shipped in prompts/."""
    folder = resources.files(PROMPTS_PACKAGE)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)
    return [_parse(f.read_text(encoding="utf-8"), f"prompts/{f.name}") for f in files]


def _model_family(model: str) -> str:
    return model.rsplit("/", 1)[-1].split(":", 1)[0].lower()


def template_for(model: str, override: Path | None = None) -> PromptTemplate:
    """The template for a model: the override file if given, else the longest matching family."""
    if override is not None:
        try:
            return _parse(override.read_text(encoding="utf-8"), str(override))
        except OSError as exc:
            raise ConfigError(f"SESSION_SEARCH_PROMPT_FILE: cannot read {override}: {exc.strerror}") from None
    family = _model_family(model)
    best: tuple[int, PromptTemplate] | None = None
    for template in builtin_templates():
        for prefix in template.match:
            if family.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), template)
    if best is not None:
        return best[1]
    return next(t for t in builtin_templates() if t.family == "default")
