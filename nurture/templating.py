"""Merge-field templates of nurture emails: checked when saved, rendered when sent.

Templates use Django's template syntax restricted to what an email needs: merge fields
(`{{ first_name }}`, `{{ company|default:"your team" }}`), a few text filters and
`{% if %}…{% elif %}…{% else %}…{% endif %}` on merge fields. Anything else (`{% load %}`,
`{% include %}`, attribute access, unknown fields or filters) is refused at save with a message, so a
template that saved always renders. Rendering is plain text with autoescape off; the HTML part is
built from that text by `nurture.emails`.
"""
from __future__ import annotations

import functools
import re

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Lexer, Parser, TokenType

MERGE_FIELDS: dict[str, str] = {
    "first_name": "The lead's first name (“there” when unknown)",
    "last_name": "The lead's last name",
    "full_name": "The lead's full name",
    "email": "The lead's email address",
    "company": "The lead's company",
    "job_title": "The lead's job title",
    "owner_name": "The lead owner's name (the sender's name when unassigned)",
    "owner_email": "The lead owner's email",
    "tenant_name": "Your company's name",
    "unsubscribe_url": "The lead's one-click unsubscribe link",
}
ALLOWED_FILTERS = frozenset({"default", "upper", "lower", "title", "capfirst"})
ALLOWED_TAGS = frozenset({"if", "elif", "else", "endif"})
_IF_WORDS = frozenset({"and", "or", "not", "in", "is", "==", "!=", "None", "True", "False"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

_ENGINE = Engine(autoescape=False, string_if_invalid="", builtins=[], libraries={})


def _field_problem(name: str) -> str | None:
    if "." in name:
        return f"“{name}”: merge fields have no attributes; use one of {_known()}."
    if name not in MERGE_FIELDS:
        return f"Unknown merge field “{name}”; use one of {_known()}."
    return None


def _known() -> str:
    return ", ".join(MERGE_FIELDS)


def template_problems(text: str) -> list[str]:
    """Why the template cannot be used (empty list when it can): syntax, unknown fields, filters or tags."""
    problems: list[str] = []
    try:
        tokens = Lexer(text or "").tokenize()
    except TemplateSyntaxError as exc:  # pragma: no cover - the lexer hardly ever raises
        return [f"Template syntax error: {exc}"]
    parser = Parser([], builtins=_ENGINE.template_builtins)
    for token in tokens:
        line = f" (line {token.lineno})" if token.lineno else ""
        if token.token_type == TokenType.VAR:
            if not token.contents.strip():
                problems.append(f"Empty merge field “{{{{ }}}}”{line}.")
                continue
            try:
                expression = FilterExpression(token.contents, parser)
            except TemplateSyntaxError as exc:
                problems.append(f"Template syntax error{line}: {exc}")
                continue
            variable = expression.var
            name = getattr(variable, "var", None)
            if not isinstance(name, str) or getattr(variable, "literal", None) is not None:
                problems.append(f"“{{{{ {token.contents} }}}}”{line} is not a merge field.")
                continue
            if problem := _field_problem(name):
                problems.append(problem + line)
            for func, args in expression.filters:
                if func.__name__ not in ALLOWED_FILTERS:
                    problems.append(f"Filter “{func.__name__}”{line} is not allowed; use "
                                    f"{', '.join(sorted(ALLOWED_FILTERS))}.")
                for is_lookup, arg in args:
                    if is_lookup and (problem := _field_problem(str(arg))):
                        problems.append(problem + line)
        elif token.token_type == TokenType.TEXT:
            if "{{" in token.contents or "{%" in token.contents:
                problems.append(f"Unclosed “{{{{” or “{{%”{line}: close merge fields with “}}}}” and tags with “%}}”.")
        elif token.token_type == TokenType.BLOCK:
            words = token.split_contents()
            tag = words[0] if words else ""
            if tag not in ALLOWED_TAGS:
                problems.append(f"Tag “{{% {token.contents} %}}”{line} is not allowed; only if/elif/else/endif.")
                continue
            for word in words[1:]:
                if word in _IF_WORDS or word.startswith(("'", '"')) or word.lstrip("-").isdigit():
                    continue
                if not _IDENTIFIER.match(word):
                    problems.append(f"“{word}” in “{{% {token.contents} %}}”{line} is not a merge field.")
                elif problem := _field_problem(word):
                    problems.append(problem + line)
    if problems:
        return problems
    try:
        _ENGINE.from_string(text or "")
    except TemplateSyntaxError as exc:
        problems.append(f"Template syntax error: {exc}")
    return problems


@functools.lru_cache(maxsize=1024)
def _compiled(text: str):
    return _ENGINE.from_string(text)


def template_render(text: str, context: dict[str, str]) -> str:
    """Render a checked template with the merge fields of one email (unknown names render empty). Compiled
    templates are cached by their text, so a batch of one step's emails compiles it once."""
    return _compiled(text or "").render(Context(context, autoescape=False))
