"""Rebuild the catalogues: extract the English msgids from the templates, write
``zh_CN/LC_MESSAGES/messages.po`` from :data:`.zh_CN.ZH_CN` and compile ``messages.mo``.
Fails when a msgid has no translation. Run: ``python -m tollway.console.i18n.build``."""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import write_po

from tollway.console.i18n.zh_CN import ZH_CN
from tollway.console.web import PROVIDER_REASONS, STATE_WORDS

HERE = Path(__file__).parent
CONSOLE = HERE.parent


def msgids() -> list[str]:
    method_map = [("**/templates/**.html", "jinja2")]
    found = extract_from_dir(str(CONSOLE), method_map=method_map)
    return sorted({m[2] for m in found if isinstance(m[2], str)} | set(STATE_WORDS) | PROVIDER_REASONS)


def main() -> int:
    ids = msgids()
    missing = [m for m in ids if m not in ZH_CN]
    catalog = Catalog(locale="zh_CN", domain="messages", project="Tollway")
    for m in ids:
        if m in ZH_CN:
            catalog.add(m, ZH_CN[m])
    out = HERE / "zh_CN" / "LC_MESSAGES"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "messages.po").open("wb") as fh:
        write_po(fh, catalog, omit_header=False, sort_output=True, no_location=True)
    with (out / "messages.mo").open("wb") as fh:
        write_mo(fh, catalog)
    print(f"{len(ids) - len(missing)} messages")
    if missing:  # the catalogue is still written, so work on one page does not block another's
        print("untranslated:", *missing, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
