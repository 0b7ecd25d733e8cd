"""The one place templates are rendered: strict about undefined names, nothing at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = (ROOT / "templates", ROOT / "clickhouse_ddl")


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in TEMPLATE_DIRS]),
        undefined=jinja2.StrictUndefined,
        # XML gets escaped values; SQL values are validated identifiers or numbers.
        autoescape=jinja2.select_autoescape(enabled_extensions=("xml.j2",), default=False),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str | Path, **context: Any) -> str:
    """Render `template` with `context`: a name under templates/ or clickhouse_ddl/, or a
    file path (its includes still resolve there)."""
    import jinja2

    env = _environment()
    try:
        if isinstance(template, Path):
            return str(env.from_string(template.read_text()).render(**context))
        return str(env.get_template(template).render(**context))
    except jinja2.UndefinedError as exc:
        from adpulse.errors import ConfigError

        raise ConfigError(f"template {template}: {exc.message}") from None
