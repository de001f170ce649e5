"""The test hosts' one way to the ONTAP simulator: its control API over HTTPS (never `import labctl.sim`).

`host.json` of a simulated host carries `ontap_url`, `ca_file`, `username` and `password_file`.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def post(info: dict[str, Any], path: str, body: dict[str, Any], timeout: float = 30
         ) -> tuple[int, dict[str, Any]]:
    """POST `body` to the simulator's `path`; (HTTP status, JSON answer). Raises OSError/URLError when the
    simulator cannot be reached within `timeout`."""
    url = info["ontap_url"].rstrip("/") + path
    ctx = ssl.create_default_context(cafile=info.get("ca_file"))
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    pw_file = info.get("password_file")
    if pw_file and Path(pw_file).exists():
        token = f"{info.get('username', 'admin')}:{Path(pw_file).read_text().strip()}"
        headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": {"message": f"server answered HTTP {exc.code}"}}
