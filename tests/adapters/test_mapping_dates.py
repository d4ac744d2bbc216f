"""Date data items read through a mapping's strptime format come out exactly as
strptime reads them, whichever path (strict fixed-width or strptime) reads them."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from govshare.adapters import ProviderUnavailable, parse_mapping

FORMATS = ["%Y%m%d", "%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%d.%m.%Y", "%m/%d/%Y %%"]


def read_date(date_format: str, text: str) -> str | None:
    mapping = parse_mapping(
        {
            "registry": "sample",
            "provider": "11330100002482101D",
            "resources": {
                "R/1": {
                    "request": {"method": "GET", "path": "/r/{holder_id}"},
                    "record": "data",
                    "fields": {"d": {"path": "d", "type": "date", "format": date_format}},
                }
            },
        },
        "test",
    )
    body = json.dumps({"data": {"d": text}}).encode()
    try:
        return mapping.resources["R/1"].interpret(200, body, "h").get("d")
    except ProviderUnavailable:
        return None


def by_strptime(date_format: str, text: str) -> str | None:
    try:
        return dt.datetime.strptime(text.strip(), date_format).date().isoformat()
    except ValueError:
        return None


def candidates(date_format: str, rng: random.Random) -> list[str]:
    texts = []
    for _ in range(300):
        year = rng.choice([1, 99, 1900, 1999, 2000, 2024, 2026, 9999])
        month = rng.choice([0, 1, 2, 9, 10, 12, 13])
        day = rng.choice([0, 1, 9, 28, 29, 30, 31, 32])
        padded = date_format.replace("%Y", f"{year:04d}").replace("%m", f"{month:02d}")
        texts.append(padded.replace("%d", f"{day:02d}").replace("%%", "%"))
        loose = date_format.replace("%Y", str(year)).replace("%m", str(month))
        texts.append(loose.replace("%d", str(day)).replace("%%", "%"))
    full_width = str.maketrans("0123456789", "０１２３４５６７８９")
    texts += [t.translate(full_width) for t in texts[:20]]
    texts += ["", "2026", "2026-11-23T00:00:00", "abcdefgh", "2026112", "202611230"]
    return texts


@pytest.mark.parametrize("date_format", FORMATS)
def test_dates_read_as_strptime_reads_them(date_format: str) -> None:
    """Padded, unpadded, impossible (month 13, 30 February), full-width digits and
    garbage: every text gives strptime's date, or is refused where strptime refuses."""
    rng = random.Random(date_format)
    texts = candidates(date_format, rng)
    assert any(by_strptime(date_format, t) for t in texts)  # the sample holds real dates
    for text in texts:
        assert read_date(date_format, text) == by_strptime(date_format, text), text
