"""Who did something: a person, an API key, a public form, or a named automated agent."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    kind: str  # "user" | "api_key" | "form" | "agent" | "system"
    name: str
    user: Any = None
    api_key: Any = None
    form: Any = None

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(kind="user", name=user.get_username(), user=user)

    @classmethod
    def for_api_key(cls, api_key) -> Actor:
        return cls(kind="api_key", name=f"API key {api_key.name} ({api_key.prefix})", api_key=api_key)

    @classmethod
    def for_form(cls, form) -> Actor:
        return cls(kind="form", name=f"Form {form.name}", form=form)

    @classmethod
    def agent(cls, name: str) -> Actor:
        return cls(kind="agent", name=name)

    @property
    def user_id(self):
        return self.user.pk if self.user is not None else None


SYSTEM = Actor(kind="system", name="System")
INTAKE_AGENT = Actor.agent("Intake Agent")
SIGNAL_AGENT = Actor.agent("Signal Agent")
