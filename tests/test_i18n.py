"""The player app's languages: every string of the sources is translated in every catalog,
with the same placeholders, and a page comes in the language the reader asked for."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po

from core.i18n import Catalogs, Formats
from tests.conftest import Node

REPO = Path(__file__).resolve().parent.parent
LOCALES = REPO / "node" / "locales"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted(tmp_path: Path) -> dict[object, object]:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_", "-k", "gettext",
         "-k", "ngettext:1,2", "-k", "N_", "-o", str(pot), "."],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as f:
        return {m.id: m for m in read_po(f) if m.id}


def catalogs() -> list[Path]:
    return sorted(LOCALES.glob("*/LC_MESSAGES/messages.po"))


def test_there_are_danish_and_northern_sami_catalogs() -> None:
    assert {p.parent.parent.name for p in catalogs()} >= {"da", "se"}


@pytest.mark.parametrize("po", catalogs(), ids=lambda p: p.parent.parent.name)
def test_every_string_is_translated_with_its_placeholders(po: Path, tmp_path: Path) -> None:
    with po.open("rb") as f:
        catalog = read_po(f)
    missing, fuzzy, broken = [], [], []
    for msgid in extracted(tmp_path):
        message = catalog.get(msgid)
        ids = msgid if isinstance(msgid, tuple) else (msgid,)
        strings = message.string if message is not None else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if message is None or not all(strings):
            missing.append(ids[0])
        elif message.fuzzy:
            fuzzy.append(ids[0])
        elif not _placeholders_kept(ids, strings):
            broken.append(ids[0])
    assert not missing, f"{po}: {len(missing)} untranslated (run scripts/i18n, then translate): {missing[:10]}"
    assert not fuzzy, f"{po}: fuzzy entries to review: {fuzzy[:10]}"
    assert not broken, f"{po}: placeholders differ from the English: {broken[:10]}"


def _placeholders_kept(ids: tuple[str, ...], strings: tuple[str, ...]) -> bool:
    """A translation uses the English placeholders, no others. A plural form may leave out the
    count (Danish "Fuldført én gang" for "Completed once"), never a named value."""
    wanted = [set(PLACEHOLDER.findall(i)) for i in ids]
    if len(ids) == 1:
        return all(set(PLACEHOLDER.findall(s)) == wanted[0] for s in strings)
    allowed = set().union(*wanted)
    named = wanted[0] & wanted[-1]  # in both English forms: every form must keep them
    return all(named <= set(PLACEHOLDER.findall(s)) <= allowed for s in strings)


def test_the_language_is_the_pick_then_the_profile_then_the_browser() -> None:
    c = Catalogs(LOCALES, "en")
    assert c.choose(None, "da-DK,da;q=0.9,en;q=0.8") == "da"
    assert c.choose(None, "nb-NO,se;q=0.5,en;q=0.1") == "se"
    assert c.choose("se", "da") == "se"
    assert c.choose("xx", "fr-FR") == "en"
    assert c.choose(None, "da;q=0, en;q=0.5") == "en"
    assert c.choose(None, "x" * 10_000) == "en"  # nonsense is not an error


def test_numbers_and_dates_follow_the_language() -> None:
    assert Formats("en").number(12345.5) == "12,345.5"
    assert Formats("da").number(12345.5) == "12.345,5"
    assert Formats("se").number(12345.5).replace("\xa0", " ") == "12 345,5"


async def test_a_page_comes_in_the_readers_language(node: Node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as c:
        english = await c.get("/app/signin", headers={"Accept-Language": "en-GB"})
        danish = await c.get("/app/signin", headers={"Accept-Language": "da-DK,da;q=0.9"})
        sami = await c.get("/app/signin", headers={"Accept-Language": "da"}, cookies={"oh_lang": "se"})
        unknown = await c.get("/app/language", params={"lang": "xx"})
    assert '<html lang="en">' in english.text and danish.headers["content-language"] == "da"
    assert '<html lang="da">' in danish.text and '<html lang="se">' in sami.text
    assert "Sign in" in english.text and "Log ind" in danish.text
    assert english.text != sami.text
    assert unknown.status_code == 404 and "xx" in unknown.text


async def test_picking_a_language_is_remembered_and_stays_on_this_site(node: Node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as c:
        r = await c.get("/app/language", params={"lang": "da", "next": "https://evil.example/"})
        assert r.status_code == 303 and r.headers["location"] == "/app"
        assert "oh_lang=da" in r.headers["set-cookie"]
        page = await c.get("/app/signin")
    assert '<html lang="da">' in page.text
