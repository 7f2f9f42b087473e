"""Write a development seed file (VDN 1, skill queue 2) with fresh credentials.

An existing file is kept, so the credentials stay the same across `make run`.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Development tenant written by scripts/demo_seed.py; do not use in production.
[[tenants]]
vdn_id = 1
time_zone = "UTC"

[[tenants.app_keys]]
access_key = "{access_key}"
secret_key = "{secret_key}"

[[tenants.skill_queues]]
id = 2
name = "defaultAudioSkill"
"""


def main(path: Path) -> int:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = TEMPLATE.format(
            access_key=f"demo-{secrets.token_hex(8)}", secret_key=secrets.token_urlsafe(32)
        )
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    print(f"demo tenant: VDN 1, credentials in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "var/demo-seed.toml")))
