"""The HTML report in a real headless Chromium: loads offline, no console errors, no requests, hostile names are text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .chromium import Chromium, chromium_path, console_errors, requests
from .conftest import RID
from .hostile import CALL_ID, DNS, IMG, SCRIPT

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        if os.environ.get("LOGIRA_REQUIRE_BPF") or os.environ.get("CI"):
            pytest.fail("chromium is not installed (make setup installs Debian's chromium)")
        pytest.skip("chromium is not installed (make setup installs Debian's chromium)")
    b = Chromium(exe)
    yield b
    b.close()


def _load(browser: Chromium, page: Path) -> str:
    session = browser.page()
    browser.events.clear()
    browser.call("Page.navigate", {"url": page.as_uri()}, session=session)
    browser.wait_event("Page.loadEventFired", session=session)
    browser.drain(0.5)  # late console messages or requests, if any
    return session


def test_html_report_in_chromium(browser: Chromium, rcli, tmp_path: Path):
    out = tmp_path / "report.html"
    code, _, err = rcli("report", RID, "--format", "html", "-o", str(out))
    assert code == 0, err
    session = _load(browser, out)
    ev = lambda js: browser.evaluate(session, js)  # noqa: E731

    assert console_errors(browser.events) == []
    assert requests(browser.events) == [out.as_uri()]  # the document itself, nothing else
    assert ev("document.documentElement.dataset.ready") == "1"  # the inline script ran without error

    # key elements
    assert ev("document.getElementById('run-id').textContent") == RID
    assert ev("document.getElementById('status').textContent") == "COMPLETE"
    assert ev("document.querySelectorAll('#timeline-svg rect').length") > 0
    assert ev("document.querySelectorAll('#timeline-svg a.mark').length") == 3
    assert ev("document.querySelectorAll('#processes details.proc').length") == 1  # bash with 2 children
    assert ev("document.querySelectorAll('#processes .proc.leaf').length") == 2
    assert ev("document.querySelectorAll('#files tr.file').length") >= 6
    assert ev("document.querySelectorAll('#files tr.denied').length") == 1
    assert "EACCES" in ev("document.querySelector('#files tr.denied').textContent")
    assert ev("document.querySelectorAll('#egress tr.dest').length") == 3
    assert ev("document.querySelectorAll('#detections article.det').length") == 3
    assert ev("document.querySelectorAll('#tool-calls tr.tool-call').length") == 1
    calls_text = ev("document.getElementById('tool-calls').textContent")
    assert CALL_ID in calls_text and SCRIPT in calls_text and "R030" in calls_text
    assert CALL_ID in ev("document.getElementById('det-23').textContent")  # the detection names its call
    assert "New in this run" in ev("document.body.textContent")

    # hostile names are text, not markup
    assert ev("document.images.length") == 0
    assert ev("document.scripts.length") == 1
    assert ev("document.querySelectorAll('svg').length") == 1  # only the timeline
    assert ev("document.querySelectorAll('b').length") == 0  # a rule title's <b> stayed text
    files_text = ev("document.getElementById('files').textContent")
    assert IMG in files_text
    assert IMG in ev("document.getElementById('detections').textContent")
    assert SCRIPT in ev("document.getElementById('processes').textContent")
    assert DNS in ev("document.getElementById('egress').textContent")
    assert "\\x1b[31mRED" in files_text and "\\u202e" in files_text  # ANSI and bidi shown escaped

    # the tree expands and collapses
    browser.evaluate(session, "document.getElementById('tree-collapse').click()")
    assert ev("Array.from(document.querySelectorAll('#processes details')).every(d => !d.open)")
    browser.evaluate(session, "document.getElementById('tree-expand').click()")
    assert ev("Array.from(document.querySelectorAll('#processes details')).every(d => d.open)")
    # a timeline mark jumps to its detection
    href = ev("document.querySelector('#timeline-svg a.mark').getAttribute('href')")
    assert ev(f"document.querySelector('{href}') !== null")

    browser.screenshot(session, ARTIFACTS / "report.png")
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000
    assert console_errors(browser.events) == []
