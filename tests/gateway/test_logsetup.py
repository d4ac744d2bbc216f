"""Logging as `govshare serve` configures it (`configure_logging`).

Run in a child interpreter: `logging.basicConfig` does nothing once pytest's own
handlers sit on the root logger.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, logging, sys
from pathlib import Path
from govshare.gateway import configure_logging

seen = []

class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record)

configure_logging(logging.INFO, Path(sys.argv[1]))
logging.getLogger().addHandler(Keep())
log = logging.getLogger("govshare.access")
log.debug("not at INFO")
log.info('{"outcome": "ALLOWED"}')
record = seen[0]
print(json.dumps({"thread": record.thread, "process": record.process,
                  "process_name": record.processName, "count": len(seen)}))
"""


def test_lines_go_to_the_file_in_the_serve_format_without_per_record_extras(
    tmp_path: Path,
) -> None:
    """INFO lines reach the file as `time LEVEL logger message`, DEBUG does not, and
    records carry no thread or process details (the format never prints them, and
    collecting them costs on every access line)."""
    log_file = tmp_path / "gateway.log"
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, str(log_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    facts = json.loads(completed.stdout)
    assert facts == {"thread": None, "process": None, "process_name": None, "count": 1}
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO govshare\.access \{\"outcome\": \"ALLOWED\"\}",
        lines[0],
    )
