"""`labctl sim ontap` as a process: prints its URL once it serves, stops on SIGTERM, keeps its state."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests


def start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str, float]:
    (tmp_path / "pw").write_text("Cli-Passw0rd\n")
    argv = [sys.executable, "-m", "labctl", "sim", "ontap", "--listen", "127.0.0.1:0",
            "--tls-dir", str(tmp_path / "tls"), "--password-file", str(tmp_path / "pw"), *extra]
    began = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url, time.monotonic() - began


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=5)


def get(url: str, tmp_path: Path, path: str) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        session.auth, session.verify = ("admin", "Cli-Passw0rd"), str(tmp_path / "tls" / "ca.pem")
        return session.get(url + path, timeout=5)


def test_prints_its_url_serves_and_stops_on_sigterm(tmp_path):
    # how fast it starts is no test's business (a busy machine stretches it): it prints its URL once it serves
    proc, url, _ = start(tmp_path)
    try:
        assert url.startswith("https://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0
        answer = get(url, tmp_path, "/api/cluster?fields=version")
        assert answer.json()["version"]["full"].startswith("NetApp Release 9.14.1")
    finally:
        assert stop(proc) == 0


def test_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "sim" / "state.json"
    proc, url, _ = start(tmp_path, "--state-file", str(state))
    try:
        with requests.Session() as s:
            s.trust_env, s.auth, s.verify = False, ("admin", "Cli-Passw0rd"), str(tmp_path / "tls" / "ca.pem")
            assert s.post(url + "/api/protocols/nfs/export-policies",
                          json={"name": "kept", "svm.name": "llm-lab"}, timeout=5).status_code == 201
            assert s.post(url + "/api/storage/volumes?return_timeout=5", timeout=5,
                          json={"name": "v1", "svm.name": "llm-lab", "size": "1GB", "nas.path": "/v1"}
                          ).status_code == 201
    finally:
        assert stop(proc) == 0
    assert (tmp_path / "sim" / "data" / "llm-lab" / "v1").is_dir()
    proc, url, _ = start(tmp_path, "--state-file", str(state))
    try:
        assert get(url, tmp_path, "/api/protocols/nfs/export-policies?name=kept").json()["num_records"] == 1
        assert get(url, tmp_path, "/api/storage/volumes?name=v1").json()["num_records"] == 1
    finally:
        assert stop(proc) == 0


@pytest.mark.parametrize("listen", ["nowhere", "127.0.0.1:x"])
def test_bad_listen_is_a_usage_error(tmp_path, listen):
    (tmp_path / "pw").write_text("pw")
    out = subprocess.run([sys.executable, "-m", "labctl", "sim", "ontap", "--listen", listen, "--tls-dir",
                          str(tmp_path / "tls"), "--password-file", str(tmp_path / "pw")],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 2 and "HOST:PORT" in out.stderr and "Traceback" not in out.stderr
