"""`python -m govshare.gateway` is the `govshare` command."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
