"""`fetch` against a real loopback HTTP server: full download, resume, a server that
ignores Range, interrupted transfers, MD5 mismatches, and the `fetch` command."""
from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT
from vsremaster import weights
from vsremaster.weights import AUTHORS_FILENAME, FetchError, fetch

PAYLOAD = random.Random(7).randbytes(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()
WRONG_MD5 = "0" * 32


class _Handler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path; honours `Range: bytes=N-` unless told not to."""

    def do_GET(self):
        state = self.server.state
        if self.path == "/missing":
            self.send_error(404)
            return
        state["ranges"].append(self.headers.get("Range"))
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and not state["ignore_range"]:
            # `wrong_range` answers every range request from byte 0
            start = 0 if state["wrong_range"] else int(rng[6:].split("-")[0])
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range",
                             f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # `cut_after` simulates a dropped connection: fewer bytes than announced.
        cut = state["cut_after"]
        sent = body if cut is None else body[:cut]
        self.wfile.write(sent)
        state["sent"] += len(sent)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def srv(server, monkeypatch):
    """The server with fresh state; `srv.url` is the file's URL."""
    server.state = {"ranges": [], "ignore_range": False, "wrong_range": False,
                    "cut_after": None, "sent": 0}
    server.url = f"http://127.0.0.1:{server.server_address[1]}/remasternet.pth.tar"
    for var in ("http_proxy", "HTTP_PROXY", "VSREMASTER_FETCH_URL", "VSREMASTER_FETCH_MD5"):
        monkeypatch.delenv(var, raising=False)
    return server


def _part(dest):
    return dest.with_name(dest.name + ".part")


def test_full_download(srv, tmp_path):
    dest = tmp_path / "sub" / "w.pth.tar"
    assert fetch(srv.url, MD5, dest, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert srv.state["ranges"] == [None]


def test_resume_from_part(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    _part(dest).write_bytes(PAYLOAD[:100_000])
    fetch(srv.url, MD5, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert srv.state["ranges"] == ["bytes=100000-"]
    assert srv.state["sent"] == len(PAYLOAD) - 100_000


def test_server_ignoring_range_restarts(srv, tmp_path):
    srv.state["ignore_range"] = True
    dest = tmp_path / "w.pth.tar"
    _part(dest).write_bytes(PAYLOAD[:100_000])
    fetch(srv.url, MD5, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD  # not the first 100 kB twice
    assert srv.state["ranges"] == ["bytes=100000-"]


def test_server_sending_another_range_restarts(srv, tmp_path):
    srv.state["wrong_range"] = True
    dest = tmp_path / "w.pth.tar"
    _part(dest).write_bytes(PAYLOAD[:100_000])
    fetch(srv.url, MD5, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert srv.state["ranges"] == ["bytes=100000-", None]


def test_complete_part_is_finished_without_data(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    _part(dest).write_bytes(PAYLOAD)
    fetch(srv.url, MD5, dest, progress=False)  # the server answers 416
    assert dest.read_bytes() == PAYLOAD and srv.state["sent"] == 0


def test_stale_part_is_replaced_by_a_whole_download(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    _part(dest).write_bytes(b"\0" * 100_000)  # bytes of some other file
    fetch(srv.url, MD5, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert srv.state["ranges"] == ["bytes=100000-", None]


def test_interrupted_download_keeps_part_then_resumes(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    srv.state["cut_after"] = 120_000
    with pytest.raises(FetchError, match="run again to resume"):
        fetch(srv.url, MD5, dest, progress=False)
    assert not dest.exists()
    assert _part(dest).read_bytes() == PAYLOAD[:120_000]
    srv.state["cut_after"] = None
    fetch(srv.url, MD5, dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert srv.state["ranges"][-1] == "bytes=120000-"


def test_md5_mismatch_leaves_nothing(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    with pytest.raises(FetchError, match="MD5 mismatch") as info:
        fetch(srv.url, WRONG_MD5, dest, progress=False)
    assert MD5 in str(info.value) and WRONG_MD5 in str(info.value)
    assert not dest.exists() and not _part(dest).exists()


def test_failed_fetch_keeps_the_old_file(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    dest.write_bytes(b"old weights")
    with pytest.raises(FetchError):
        fetch(srv.url, WRONG_MD5, dest, progress=False)
    assert dest.read_bytes() == b"old weights"


def test_present_file_is_not_downloaded_again(srv, tmp_path):
    dest = tmp_path / "w.pth.tar"
    dest.write_bytes(PAYLOAD)
    fetch(srv.url, MD5, dest, progress=False)
    assert srv.state["ranges"] == []


def test_http_error_is_reported(srv, tmp_path):
    url = srv.url.rsplit("/", 1)[0] + "/missing"
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(url, MD5, tmp_path / "w", progress=False)
    assert not (tmp_path / "w").exists()


def test_unreachable_server_is_reported(tmp_path):
    with pytest.raises(FetchError, match="failed after 0 bytes"):
        fetch("http://127.0.0.1:1/w", MD5, tmp_path / "w", progress=False)


def test_env_overrides_and_default_dest(srv, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("VSREMASTER_FETCH_URL", srv.url)
    monkeypatch.setenv("VSREMASTER_FETCH_MD5", MD5.upper())
    dest = fetch(progress=False)
    assert dest == weights.user_data_dir() / AUTHORS_FILENAME
    assert dest.read_bytes() == PAYLOAD


def _cli(*args, env=None):
    env = {**os.environ, **(env or {})}
    for var in ("http_proxy", "HTTP_PROXY", "VSREMASTER_FETCH_URL", "VSREMASTER_FETCH_MD5"):
        env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "vsremaster", "fetch", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_fetch_command(srv, tmp_path):
    dest = tmp_path / "cli" / "remasternet.pth.tar"
    done = _cli("--url", srv.url, "--md5", MD5, "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(dest)
    assert dest.read_bytes() == PAYLOAD


def test_fetch_command_md5_mismatch(srv, tmp_path):
    dest = tmp_path / "remasternet.pth.tar"
    done = _cli("--url", srv.url, "--md5", WRONG_MD5, "--dest", str(dest), "--quiet")
    assert done.returncode == 1
    assert "MD5 mismatch" in done.stderr
    assert not dest.exists() and not _part(dest).exists()
