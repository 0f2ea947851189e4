"""The shipped nginx site (deploy/nginx/eldercare.conf) on a real nginx, in front of a stand-in console."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.certs import server_certificate
from eldercare.servers._child import free_port

pytestmark = pytest.mark.integration

SITE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "eldercare.conf"
TOKEN = "eyJhIjoxMjMsInciOiJXX0cxIiwieCI6ImFja25vd2xlZGdlIiwiZSI6MTcwMDAwNzIwMDAwMH0.axa-bw.n_nqrZu92OSupSo82rhsKNfJih0"
"""The shape of a one-tap link's token (alerts/links.py): it opens its page without a login until it expires."""


class _Console(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The site file as shipped, with only its ports, certificate paths and console port moved into the test."""
    console = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Console)
    threading.Thread(target=console.serve_forever, daemon=True).start()
    cert = server_certificate(tmp_path / "tls", hosts=("care.example.org", "127.0.0.1"))
    https, plain = free_port(), free_port()
    site = (
        SITE.read_text()
        .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl;")
        .replace("listen 80;", f"listen 127.0.0.1:{plain};")
        .replace("/etc/letsencrypt/live/care.example.org/fullchain.pem", str(cert.cert))
        .replace("/etc/letsencrypt/live/care.example.org/privkey.pem", str(cert.key))
        .replace("http://127.0.0.1:8000", f"http://127.0.0.1:{console.server_address[1]}")
        .replace("/var/log/nginx/", f"{tmp_path}/")
    )
    (tmp_path / "site.conf").write_text(site)
    temp = "\n".join(f"{k}_temp_path {tmp_path}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        # Debian's /etc/nginx/nginx.conf: one access log for every site unless a site names its own.
        f"http {{\n  access_log {tmp_path}/access.log;\n  {temp}\n  include {tmp_path}/site.conf;\n}}\n"
    )
    proc = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "nginx.pid").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
        yield https, tmp_path
    finally:
        proc.terminate()
        proc.wait(30)
        console.shutdown()


def test_one_tap_and_family_tokens_stay_out_of_the_access_log(nginx: tuple[int, Path]) -> None:
    """A one-tap link (``/m/{token}``) or a family link (``/family/{token}``) opens its page without a login until it
    expires, and nginx's default access log wrote each whole, with the Referer that repeats it: anyone who can
    read the logs could take or resolve an SOS. The site logs them masked, and no Referer."""
    port, logs = nginx
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for path in (f"/m/{TOKEN}", f"/family/{TOKEN}?lang=en", "/m/residents"):
        request = urllib.request.Request(f"https://127.0.0.1:{port}{path}", headers={"Referer": f"https://x/m/{TOKEN}"})
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            assert answer.status == 200
    deadline = time.monotonic() + 10
    text = ""
    while text.count("\n") < 3:  # nginx writes each line when the request ends
        text = "".join(p.read_text() for p in logs.glob("*access*.log"))
        assert time.monotonic() < deadline, text
        time.sleep(0.05)
    assert TOKEN not in text and TOKEN[:40] not in text, text
    assert "/m/<token>" in text and "/family/<token>?lang=en" in text and "/m/residents" in text, text
