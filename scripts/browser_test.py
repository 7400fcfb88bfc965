#!/usr/bin/env python3
"""Drives the gateway's page in headless Chromium through WebDriver (chromedriver), with the standard library only.

Starts `poetry gateway` on a free port, sets up the seed's scenario with small delays through the page's own
controls, races blocking against async, and checks that every task finished, the chart has its marks and the
speedup is shown. Then replays the shareable link and checks the page at 375 px, stops a server mid-poem and
checks the page shows that task cut short, runs the page against a gateway that needs a token, and checks that an
EventSource on a fetch sees it once and stops. Saves screenshots in artifacts/. Usage: scripts/browser_test.py [path/to/poetry]
"""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, "artifacts")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500"],
        }}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}").get("value", {}) if method != "POST" or path != "/session" else json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"WebDriver {method} {path}: {error.code} {error.read()[:300]!r}")

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.s("POST", "/url", {"url": url})

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click")

    def type(self, css, text):
        element = self.find(css)
        self.s("POST", f"/element/{element}/clear")
        self.s("POST", f"/element/{element}/value", {"text": text})

    def js(self, script, *args):
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, script, timeout=60, what="condition"):
        end = time.time() + timeout
        while time.time() < end:
            if self.js(script):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def screenshot(self, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        path = os.path.join(ARTIFACTS, name)
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("GET", "/screenshot")))
        return path

    def resize(self, width, height):
        self.s("POST", "/window/rect", {"width": width, "height": height})

    def quit(self):
        try:
            self.s("DELETE", "")
        except Exception:
            pass


def check_race(driver, label):
    """After a race: every task finished, marks for both runs, totals and the speedup shown."""
    driver.wait("return document.body.dataset.finished === 'true'", what=f"{label}: the race to finish")
    states = driver.js("return [...document.querySelectorAll('.task')].map(t => t.dataset.state)")
    assert states == ["done"] * 6, f"{label}: task states {states}"
    blocking_marks = driver.js("return document.querySelectorAll('#timeline .mark.blocking').length")
    async_marks = driver.js("return document.querySelectorAll('#timeline .mark.async').length")
    assert blocking_marks > 50 and async_marks > 50, f"{label}: marks {blocking_marks}/{async_marks}"
    result = driver.js("return document.querySelector('#result').textContent")
    assert re.search(r"blocking: [\d.]+ s · async: [\d.]+ s · speedup [\d.]+×", result), f"{label}: result {result!r}"
    speedup = float(re.search(r"speedup ([\d.]+)", result).group(1))
    assert speedup > 1.5, f"{label}: speedup only {speedup}"
    errors = driver.js("return document.querySelector('#errors').textContent")
    assert not errors.strip(), f"{label}: errors shown: {errors!r}"
    return result


def race_through_controls(driver, url):
    """A person's way: the page's own controls set up the seed's scenario and race it."""
    driver.go(url)
    driver.wait("return document.querySelectorAll('#poem-select option').length === 4", what="poems to load")
    driver.type("#seed-delay", "0.02")
    driver.click("#seed-button")
    driver.wait("return document.querySelectorAll('#targets input:checked').length === 3", what="the seed's servers")
    driver.click("#run-both")
    result = check_race(driver, "controls")
    return f"{result} (screenshot {driver.screenshot('page.png')})"


def replay_link_at_375px(driver, url):
    """The shareable link replays the race, and the page still reads at 375 px."""
    driver.resize(375, 1400)
    driver.go(url + "?scenario=seed&mode=both&delay=0.02")
    result = check_race(driver, "link")
    width = driver.js("return document.documentElement.scrollWidth")
    assert width <= 380, f"page is {width}px wide at 375px"
    return f"{result} (screenshot {driver.screenshot('page-375.png')})"


def show_a_poem_cut_short(driver, url):
    """A server stopped mid-poem: the page shows that task as cut short, not finished."""
    driver.resize(1280, 1500)
    driver.go(url + "?scenario=seed&mode=async&delay=0.05")
    driver.wait("return Number(document.querySelector('.task progress')?.value) > 0", what="cut short: task 1's first bytes")
    with urllib.request.urlopen(url + "api/servers", timeout=10) as response:
        servers = json.loads(response.read())
    ecstasy = max(server["id"] for server in servers if server["poem"] == "ecstasy")
    urllib.request.urlopen(urllib.request.Request(url + f"api/servers/{ecstasy}", method="DELETE"), timeout=10)
    driver.wait("return document.body.dataset.finished === 'true'", what="cut short: the run to finish")
    states = driver.js("return [...document.querySelectorAll('.task')].map(t => t.dataset.state)")
    assert states == ["failed", "done", "done"], f"cut short: task states {states}"
    status = driver.js("return document.querySelector('.task .status').textContent")
    assert re.match(r"cut short: Connection reset by peer after \d+ bytes", status), f"cut short: status {status!r}"
    return status


def work_with_a_token(driver, binary):
    """A gateway that needs a token: the page takes it from the link's fragment and keeps working."""
    secured = subprocess.Popen([binary, "gateway", "--port", "0", "--token", "page-secret", "--poetry-dir",
                                os.path.join(ROOT, "poetry"), "--public-dir", os.path.join(ROOT, "public")],
                               stdout=subprocess.PIPE, text=True)
    try:
        secured_url = re.search(r"(http://\S+/)", secured.stdout.readline()).group(1)
        driver.resize(1280, 1500)
        driver.go(secured_url + "?scenario=seed&mode=async&delay=0.01#token=page-secret")
        driver.wait("return document.body.dataset.finished === 'true'", what="token: the run to finish")
        states = driver.js("return [...document.querySelectorAll('.task')].map(t => t.dataset.state)")
        assert states == ["done"] * 3, f"token: task states {states}"
        errors = driver.js("return document.querySelector('#errors').textContent")
        assert not errors.strip(), f"token: errors shown: {errors!r}"
        return "the page starts servers and fetches"
    finally:
        secured.terminate()
        secured.wait(timeout=5)


def event_source_fetches_once(driver, url):
    """An EventSource on /api/fetch sees one fetch and stops: the stream's events carry ids, and the reconnect
    EventSource makes when a stream ends (with Last-Event-ID) gets 204, which closes it for good."""
    body = json.dumps({"poem": "science", "numBytes": 200, "delay": 0.001}).encode()
    request = urllib.request.Request(url + "api/servers", data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        port = json.loads(response.read())["port"]

    def fetches_started():
        with urllib.request.urlopen(url + "metrics", timeout=10) as response:
            text = response.read().decode()
        return float(re.search(r"^poetry_fetches_total (\S+)$", text, re.M).group(1))

    before = fetches_started()
    driver.go(url + "healthz")  # any page of the gateway's origin, with nothing of its own running
    driver.js("""
        const seen = window.seen = {opens: 0, summaries: 0, ids: []};
        const source = window.source = new EventSource('/api/fetch?format=sse&targets=' + arguments[0]);
        source.onopen = () => seen.opens++;
        source.addEventListener('summary', event => { seen.summaries++; seen.ids.push(event.lastEventId); });
    """, port)
    # CLOSED (2) only once a reconnect was refused; without the 204 it reconnects and fetches again forever.
    driver.wait("return window.source.readyState === 2", timeout=30, what="EventSource: to close after its 204")
    seen = driver.js("return window.seen")
    assert seen["opens"] == 1 and seen["summaries"] == 1, f"EventSource: {seen}"
    assert re.fullmatch(r"\d+-\d+", seen["ids"][0]), f"EventSource: summary id {seen['ids']}"
    started = fetches_started() - before
    assert started == 1, f"EventSource: {started} fetches started"
    return f"one fetch, summary id {seen['ids'][0]}, then closed"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/debug/poetry")
    gateway = subprocess.Popen([binary, "gateway", "--port", "0", "--poetry-dir", os.path.join(ROOT, "poetry"),
                                "--public-dir", os.path.join(ROOT, "public")], stdout=subprocess.PIPE, text=True)
    driver_port = free_port()
    chromedriver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    passed = failed = 0
    driver = None
    try:
        url = re.search(r"(http://\S+/)", gateway.stdout.readline()).group(1)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{driver_port}/status", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        driver = WebDriver(driver_port)
        checks = [("page controls", "page-failed.png", lambda: race_through_controls(driver, url)),
                  ("scenario link at 375px", "page-375-failed.png", lambda: replay_link_at_375px(driver, url)),
                  ("a poem cut short", "page-cut-short-failed.png", lambda: show_a_poem_cut_short(driver, url)),
                  ("with --token", "page-token-failed.png", lambda: work_with_a_token(driver, binary)),
                  ("EventSource fetches once", "event-source-failed.png", lambda: event_source_fetches_once(driver, url))]
        for name, failure_shot, check in checks:
            try:
                print(f"PASS {name}: {check()}")
                passed += 1
            except Exception as error:
                print(f"FAIL {name}: {error}")
                driver.screenshot(failure_shot)
                failed += 1
    finally:
        if driver:
            driver.quit()
        chromedriver.terminate()
        gateway.terminate()
        gateway.wait(timeout=5)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
