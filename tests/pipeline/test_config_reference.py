"""docs/config.md is the reference written from the config models: it cannot drift."""

from __future__ import annotations

from pathlib import Path

from brainalign.pipeline.analyses.rdm_rsa import RdmRsaConfig
from brainalign.pipeline.config import StudyConfig
from brainalign.pipeline.config_reference import config_reference, field_comments

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_docs_config_md_is_the_generated_reference():
    assert DOC.read_text() == config_reference(), (
        "docs/config.md is stale: python -m brainalign.pipeline.config_reference > docs/config.md"
    )


def test_every_section_and_key_is_listed():
    text = config_reference()
    for section in StudyConfig.model_fields["analyses"].annotation.model_fields:
        assert f"## `[analyses.{section}]`" in text
    for key in ("bootstrap", "vision", "ceiling_pool", "importer", "threads_per_task"):
        assert f"| `{key}` |" in text
    assert '`"auto" | "dual"' in text.replace("\\|", "|")


def test_comments_above_a_field_are_its_meaning():
    meaning = field_comments(RdmRsaConfig)["bootstrap"]
    assert "stimulus bootstrap" in meaning or "stimuli alone" in meaning


def test_every_key_has_a_meaning():
    """Each key's row names what it does: a field without a comment above it fails, by name."""
    missing, section = [], None
    for line in config_reference().splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("| `"):
            cells = [c.strip() for c in line.replace("\\|", "¦").strip("|").split("|")]
            if len(cells) != 4 or not cells[3]:
                missing.append(f"{section}: {cells[0]}")
    assert not missing, (
        "config keys without a meaning (write a comment line just above the field): "
        + "; ".join(missing)
    )
