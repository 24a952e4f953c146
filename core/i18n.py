"""Languages of the player app: gettext catalogs, choosing a language, localised formats.

English is the source language (the strings in templates and code); every other language is
one catalog, ``<locales>/<code>/LC_MESSAGES/messages.po``, read when the node starts. Adding a
language is adding a catalog (``pybabel init``, README "Languages"). A person's language is the
one in their profile, else the best match of their browser's ``Accept-Language``, else the
node's default (``OH_WEB_DEFAULT_LANGUAGE``).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog
from babel import Locale, UnknownLocaleError, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

log = structlog.get_logger(__name__)
SOURCE = "en"
CODE = re.compile(r"^[a-z]{2,3}$")
NONE = "\u2013"  # an en dash where a value is missing
_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")


def _translations(po: Path) -> Translations:
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(buffer, domain="messages")


class Catalogs:
    """The installed languages and their translations (English needs none)."""

    def __init__(self, folder: Path, default: str = SOURCE) -> None:
        self._by_code: dict[str, NullTranslations] = {SOURCE: NullTranslations()}
        for po in sorted(folder.glob("*/LC_MESSAGES/messages.po")):
            code = po.parent.parent.name
            if CODE.fullmatch(code):
                self._by_code[code] = _translations(po)
        self.default = default if default in self._by_code else SOURCE
        if default not in self._by_code:
            log.warning("default language has no catalog; using English", language=default)

    @property
    def codes(self) -> list[str]:
        return list(self._by_code)

    def translations(self, code: str) -> NullTranslations:
        return self._by_code.get(code) or self._by_code[SOURCE]

    def choose(self, preferred: str | None, accept_language: str | None) -> str:
        """The profile's language if installed, else the browser's best installed one, else the default."""
        if preferred in self._by_code:
            return preferred  # type: ignore[return-value]
        ranked: list[tuple[float, int, str]] = []
        for i, part in enumerate((accept_language or "")[:500].split(",")[:20]):
            m = _RANGE.match(part)
            if not m:
                continue
            q = float(m.group(2)) if m.group(2) else 1.0
            tag = m.group(1).lower()
            # Northern Sami browsers say "se"; Norwegian Bokmål players often also read it, but
            # only the tag decides here.
            if tag in self._by_code and q > 0:
                ranked.append((-q, i, tag))
        return sorted(ranked)[0][2] if ranked else self.default

    def names(self) -> list[tuple[str, str]]:
        """(code, the language's own name) for a picker."""
        return [(code, language_name(code)) for code in self._by_code]


def language_name(code: str) -> str:
    try:
        return Locale.parse(code).get_display_name(code) or code
    except (ValueError, UnknownLocaleError):
        return code


def _locale(code: str) -> Locale:
    try:
        return Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return Locale.parse(SOURCE)


class Formats:
    """Dates and numbers in one language (CLDR via Babel); what the templates' filters call."""

    def __init__(self, code: str, time_zone: str = "UTC") -> None:
        self.locale = _locale(code)
        try:
            self.tz: tzinfo = ZoneInfo(time_zone)
        except (ValueError, ZoneInfoNotFoundError):
            log.warning("unknown time zone; showing UTC", time_zone=time_zone)
            self.tz = UTC

    def number(self, value: float | int | None, digits: int | None = None) -> str:
        if value is None:
            return NONE
        if digits is None:
            return numbers.format_decimal(value, locale=self.locale)
        return numbers.format_decimal(value, format=f"#,##0.{'0' * digits}" if digits else "#,##0", locale=self.locale)

    def percent(self, value: float | None) -> str:
        return NONE if value is None else numbers.format_percent(value, locale=self.locale)

    def datetime(self, value: datetime | None, style: str = "medium") -> str:
        return NONE if value is None else dates.format_datetime(value, style, tzinfo=self.tz, locale=self.locale)

    def date(self, value: date | datetime | None, style: str = "medium") -> str:
        if isinstance(value, datetime):
            value = value.astimezone(self.tz)
        return NONE if value is None else dates.format_date(value, style, locale=self.locale)

    def ago(self, value: datetime | None, now: datetime | None = None) -> str:
        if value is None:
            return NONE
        now = now or datetime.now(value.tzinfo)
        return dates.format_timedelta(value - now, add_direction=True, locale=self.locale)
