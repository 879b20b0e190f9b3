"""The verification page in a real browser: Debian's headless Chromium, driven by Selenium.

A legal team's gesture: open /verify, choose a signed PDF, press Verify, read the verdict; then the
same for a PDF changed after signing, and the English page. A screenshot of each is kept for a person.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bidproc.config import ClamdSettings
from tests.foundation.stack import Stack
from tests.pki import TestPKI
from tests.services import unavailable
from tests.signature.signing import make_pdf, sign_pdf

SHOTS = Path(os.environ.get("BIDPROC_SCREENSHOTS", "/tmp/bidproc-screenshots"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI, s3_endpoint: str, clamd_settings: ClamdSettings,
         postgres_url: str, redis_url: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("verify-page")
    (tmp / "root.der").write_bytes(pki.root_der)
    stack = Stack(tmp, s3_endpoint, clamd_settings, env={
        "BIDPROC_API_VERIFY_PAGE": "true",
        "BIDPROC_API_VERIFY_PAGE_MAX_BYTES": str(2 << 20),
        "BIDPROC_API_VERIFY_PAGE_PER_MINUTE": "8",
        "BIDPROC_SIGNATURE_TRUST_ANCHOR_FILES": str(tmp / "root.der"),
    })
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        unavailable("chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1700"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    yield browser
    browser.quit()


def _verify(browser: object, url: str, path: Path, shot: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    b: object = browser
    b.get(url)  # type: ignore[attr-defined]
    b.find_element(By.ID, "file").send_keys(str(path))  # type: ignore[attr-defined]
    b.find_element(By.ID, "submit").click()  # type: ignore[attr-defined]
    WebDriverWait(b, 60).until(ec.presence_of_element_located((By.ID, "report")))
    SHOTS.mkdir(parents=True, exist_ok=True)
    b.save_screenshot(str(SHOTS / f"{shot}.png"))  # type: ignore[attr-defined]
    b.switch_to.frame(b.find_element(By.ID, "report"))  # type: ignore[attr-defined]
    try:
        return str(b.find_element(By.ID, "verdict").text)  # type: ignore[attr-defined]
    finally:
        b.switch_to.default_content()  # type: ignore[attr-defined]


def test_a_lawyer_drops_a_signed_pdf_and_reads_the_verdict(site: Stack, browser: object, pki: TestPKI,
                                                           tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    signed = sign_pdf(make_pdf("Acte d'engagement"), pki, level="B-LT")
    (tmp_path / "acte-signe.pdf").write_bytes(signed)
    verdict = _verify(browser, f"http://127.0.0.1:{site.port}/verify", tmp_path / "acte-signe.pdf", "verify-valid-fr")
    assert "Signature valide" in verdict and "acte-signe.pdf" in verdict, verdict
    # the sealed PDF and the ETSI XML come with the page, as downloads (nothing is kept on the server)
    pdf_href = browser.find_element(By.ID, "pdf-link").get_attribute("href")  # type: ignore[attr-defined]
    assert pdf_href.startswith("data:application/pdf;base64,")
    assert base64.b64decode(pdf_href.split(",", 1)[1]).startswith(b"%PDF-")
    xml_href = browser.find_element(By.ID, "xml-link").get_attribute("href")  # type: ignore[attr-defined]
    assert b"ValidationReport" in base64.b64decode(xml_href.split(",", 1)[1])

    changed = signed + b"\n% appended after signing\n1 0 obj\n<< >>\nendobj\n"
    (tmp_path / "acte-modifie.pdf").write_bytes(changed)
    url = f"http://127.0.0.1:{site.port}/verify?lang=en"
    verdict = _verify(browser, url, tmp_path / "acte-modifie.pdf", "verify-changed-en")
    assert "NOT valid" in verdict, verdict


def test_the_page_is_bounded_and_hostile_names_are_escaped(site: Stack, pki: TestPKI) -> None:
    url = f"http://127.0.0.1:{site.port}/verify"
    page = httpx.get(url)
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    too_big = httpx.post(url, files={"file": ("big.pdf", b"%PDF-" + b"x" * (3 << 20))})
    assert too_big.status_code == 413 and too_big.json()["code"] == "size.too_large"
    hostile = '<img src=x onerror=alert(1)>.pdf'
    answer = httpx.post(url, files={"file": (hostile, sign_pdf(make_pdf("x"), pki, level="B-B"))}, timeout=60)
    assert answer.status_code == 200 and "<img src=x" not in answer.text
    for _ in range(8):
        last = httpx.post(url, files={"file": ("a.pdf", b"%PDF-1.7")}, timeout=60)
    assert last.status_code == 429 and last.json()["code"] == "quota.rate"


def test_the_page_is_off_unless_configured(tmp_path: Path, s3_endpoint: str, clamd_settings: ClamdSettings,
                                           postgres_url: str, redis_url: str) -> None:
    stack = Stack(tmp_path, s3_endpoint, clamd_settings)
    try:
        answer = httpx.get(f"http://127.0.0.1:{stack.port}/verify")
        assert answer.status_code == 404 and answer.json()["code"] == "request.not_found"
    finally:
        stack.close()


def test_verify_serve_runs_the_page_on_a_lawyers_machine(tmp_path: Path, pki: TestPKI) -> None:
    import signal
    import subprocess
    import sys
    import time

    from tests.services import ROOT, free_port

    port = free_port()
    (tmp_path / "root.der").write_bytes(pki.root_der)
    env = {**os.environ, "BIDPROC_SERVICE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "bidproc.cli", "verify", "--serve", "--port", str(port),
                             "--trust-anchor", str(tmp_path / "root.der")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/verify"
        for _ in range(200):
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        signed = sign_pdf(make_pdf("Offre"), pki, level="B-LT")
        answer = httpx.post(url, files={"file": ("offre.pdf", signed)}, data={"lang": "en"}, timeout=120)
        assert answer.status_code == 200 and "Valid signature" in answer.text, answer.text[-2000:]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/tenders").status_code == 404  # the page only, no API
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
