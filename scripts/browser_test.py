#!/usr/bin/env python3
"""Drives the gateway's page in headless Chromium through WebDriver (chromedriver), with the standard library only.

Starts `poetry gateway` on a free port, sets up the seed's scenario with small delays through the page's own
controls, races blocking against async, and checks that every task finished, the chart has its marks and the
speedup is shown. Then replays the shareable link and checks the page at 375 px, stops a server mid-poem and
checks the page shows that task cut short, runs the page against a gateway that needs a token, and checks that an
EventSource on a fetch sees it once and stops. Then (issue 18) a first run on `--demo` with one press, the link three
times reusing its servers, the loop's numbers against its marks, the timeline's fit at 1280 and 375 px (reduced
motion), the page in Chinese, and axe-core. Saves screenshots in artifacts/. Usage: scripts/browser_test.py [path/to/poetry]
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
    def __init__(self, port, extra_args=(), prefs=None):
        self.base = f"http://127.0.0.1:{port}"
        options = {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1500",
                     *extra_args],
        }
        if prefs:
            options["prefs"] = prefs
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options,
                                                 "goog:loggingPrefs": {"browser": "ALL"}}}}
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

    def js_async(self, script, *args):
        return self.s("POST", "/execute/async", {"script": script, "args": list(args)})

    def console_errors(self):
        """The browser console's errors since the last call (a failed load such as a 404 favicon is one)."""
        entries = self.s("POST", "/se/log", {"type": "browser"}) or []
        return [entry["message"] for entry in entries if entry.get("level") == "SEVERE"]

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
    """After a race: every task of the three runs finished, marks for each, totals and the speedup shown."""
    driver.wait("return document.body.dataset.finished === 'true'", what=f"{label}: the race to finish")
    states = driver.js("return [...document.querySelectorAll('.task')].map(t => t.dataset.state)")
    assert states == ["done"] * 9, f"{label}: task states {states}"
    for mode in ("blocking", "threaded", "async"):
        marks = driver.js(f"return document.querySelectorAll('#timeline .mark.{mode}').length")
        assert marks > 50, f"{label}: {marks} {mode} marks"
    result = driver.js("return document.querySelector('#result').textContent")
    assert re.search(r"blocking: [\d.]+ s · threaded: [\d.]+ s · async: [\d.]+ s · speedup [\d.]+×", result), f"{label}: result {result!r}"
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
    driver.click("#run-all")
    result = check_race(driver, "controls")
    return f"{result} (screenshot {driver.screenshot('page.png')})"


def replay_link_at_375px(driver, url):
    """The shareable link replays the race, and the page still reads at 375 px."""
    driver.resize(375, 1400)
    driver.go(url + "?scenario=seed&mode=all&delay=0.02")
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


# --- issue 18: the first run, the link's reuse, three lanes, the loop's numbers, a phone, 中文, axe ---

SEED_BYTES = 3003 + 615 + 653


def start_gateway(binary, *args):
    process = subprocess.Popen([binary, "gateway", "--port", "0", "--poetry-dir", os.path.join(ROOT, "poetry"),
                                "--public-dir", os.path.join(ROOT, "public"), *args], stdout=subprocess.PIPE, text=True)
    return process, re.search(r"(http://\S+/)", process.stdout.readline()).group(1)


def stop_gateway(process):
    process.terminate()
    process.wait(timeout=5)


def server_count(url):
    with urllib.request.urlopen(url + "api/servers", timeout=10) as response:
        return len(json.loads(response.read()))


def first_run_with_demo(driver, binary):
    """`poetry gateway --demo`, then one press of the primary button and nothing else: a three-lane race on the
    demo's own servers (none started), controls off while it runs, no error, nothing in the console."""
    gateway, url = start_gateway(binary, "--demo", "--demo-delay", "0.02")
    try:
        driver.resize(1280, 1500)
        driver.console_errors()
        driver.go(url)
        driver.wait("return document.querySelectorAll('#targets input:checked').length === 3", what="first run: the demo's servers selected")
        driver.click("#race-seed")
        driver.wait("return document.body.dataset.running === 'true'", what="first run: the race to start")
        disabled = driver.js("return ['#race-seed', '#run-all', '#run-async', '#seed-button'].map(s => document.querySelector(s).disabled)")
        assert all(disabled), f"first run: controls enabled during the run: {disabled}"
        result = check_race(driver, "first run")
        assert server_count(url) == 3, f"first run: {server_count(url)} servers, expected the demo's 3 reused"
        enabled = driver.js("return !document.querySelector('#run-all').disabled")
        assert enabled, "first run: controls still off after the run"
        errors = driver.console_errors()
        assert not errors, f"first run: console errors {errors}"
        return f"{result} (screenshot {driver.screenshot('page-first-run.png')})"
    finally:
        stop_gateway(gateway)


def link_reuses_servers(driver, url):
    """The shareable link three times: the first may start the seed's servers, the next two reuse them."""
    driver.resize(1280, 1500)
    link = url + "?scenario=seed&mode=async&delay=0.011"
    counts = []
    for _ in range(3):
        driver.go(link)
        driver.wait("return document.body.dataset.finished === 'true'", what="link: the run to finish")
        states = driver.js("return [...document.querySelectorAll('.task')].map(t => t.dataset.state)")
        assert states == ["done"] * 3, f"link: task states {states}"
        counts.append(server_count(url))
    assert counts[0] == counts[1] == counts[2], f"link: server counts {counts}"
    return f"server count {counts[0]} after each of three visits"


def wakeup_numbers_agree(driver, url):
    """The async loop lane: the number written equals the wake-up marks drawn, and their bytes add up to the poems."""
    driver.resize(1280, 1500)
    driver.go(url + "?scenario=seed&mode=all&delay=0.02")
    check_race(driver, "wake-ups")
    shown = driver.js("return document.querySelector('#loop-numbers li.async').textContent")
    match = re.match(r"async: (\d+) wake-ups, slept (\d+) % of ([\d.]+) s", shown)
    assert match, f"wake-ups: {shown!r}"
    marks = driver.js("return document.querySelectorAll('#timeline .wake').length")
    recorded = driver.js("return Number(document.querySelector('#loop-numbers li.async').dataset.wakeups)")
    assert int(match.group(1)) == marks == recorded, f"wake-ups: text {match.group(1)}, marks {marks}, data {recorded}"
    bytes_read = driver.js("return [...document.querySelectorAll('#timeline .wake')].reduce((s, w) => s + Number(w.dataset.bytes), 0)")
    assert bytes_read == SEED_BYTES, f"wake-ups: their bytes add up to {bytes_read}, not {SEED_BYTES}"
    assert 0 < int(match.group(2)) <= 100, f"wake-ups: slept {match.group(2)} %"
    for mode in ("blocking", "threaded"):
        line = driver.js(f"return document.querySelector('#loop-numbers li.{mode}').textContent")
        assert re.match(rf"{mode}: .*blocked in connect/recv \d+ %", line), f"wake-ups: {mode} line {line!r}"
    waits = driver.js("return document.querySelectorAll('#timeline .wait').length")
    assert waits > 100, f"wake-ups: only {waits} waits drawn"
    return shown


def timeline_fits(driver, label):
    """Timeline text at least 10 px on screen, the last tick label and every lane label inside the chart."""
    sizes = driver.js("""
        const svg = document.querySelector('#timeline');
        const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        const texts = [...svg.querySelectorAll('text')];
        const right = Math.max(...texts.map(t => { const b = t.getBBox(); return (b.x + b.width); }));
        return { smallest: Math.min(...texts.map(t => parseFloat(getComputedStyle(t).fontSize) * scale)),
                 right: right, width: svg.viewBox.baseVal.width, page: document.documentElement.scrollWidth,
                 window: window.innerWidth };""")
    assert sizes["smallest"] >= 10, f"{label}: timeline text {sizes['smallest']:.1f}px"
    assert sizes["right"] <= sizes["width"], f"{label}: a label ends at {sizes['right']:.0f} of {sizes['width']}"
    assert sizes["page"] <= sizes["window"], f"{label}: page {sizes['page']}px wide in a {sizes['window']}px window"
    return sizes


def phone_with_reduced_motion(binary, driver_port, url):
    """375 px with reduced motion: the race is in view the moment it starts, nothing clipped, text readable."""
    phone = WebDriver(driver_port, extra_args=["--force-prefers-reduced-motion"])
    try:
        phone.resize(375, 812)
        phone.go(url)
        phone.wait("return document.querySelectorAll('#poem-select option').length === 4", what="phone: poems to load")
        assert phone.js("return matchMedia('(prefers-reduced-motion: reduce)').matches"), "phone: reduced motion not in force"
        phone.type("#seed-delay", "0.02")
        phone.click("#race-seed")
        phone.wait("return document.body.dataset.running === 'true'", what="phone: the race to start")
        phone.wait("return document.querySelectorAll('#timeline .mark').length > 0", what="phone: the first marks")
        view = phone.js("const r = document.querySelector('#timeline').getBoundingClientRect(); return [r.top, r.bottom, innerHeight]")
        assert view[0] >= -1 and view[1] <= view[2] + 1, f"phone: the timeline is at {view[0]:.0f}–{view[1]:.0f} of {view[2]}"
        shot = phone.screenshot("page-375-start.png")
        check_race(phone, "phone")
        sizes = timeline_fits(phone, "phone")
        phone.screenshot("page-375-end.png")
        return f"timeline text {sizes['smallest']:.0f}px, in view at start (screenshot {shot})"
    finally:
        phone.quit()


def wide_timeline_fits(driver, url):
    """At 1280 px too, the last tick label stays inside the chart."""
    driver.resize(1280, 1500)
    driver.go(url + "?scenario=seed&mode=all&delay=0.02")
    check_race(driver, "1280")
    sizes = timeline_fits(driver, "1280")
    return f"labels end at {sizes['right']:.0f} of {sizes['width']:.0f}"


def chinese_page(driver_port, url):
    """A browser whose language is Chinese gets the page in Chinese, every word of it, and the toggle switches."""
    zh = WebDriver(driver_port, extra_args=["--lang=zh-CN"], prefs={"intl.accept_languages": "zh-CN,zh"})
    try:
        zh.resize(1280, 1500)
        zh.go(url + "?scenario=seed&mode=all&delay=0.02")
        zh.wait("return document.body.dataset.finished === 'true'", what="中文: the race to finish")
        assert zh.js("return document.documentElement.lang") == "zh-CN", "中文: html lang"
        with urllib.request.urlopen(url + "api/poems", timeout=10) as response:
            poems = json.loads(response.read())
        allowed = {w.lower() for p in poems for w in re.findall(r"[A-Za-z]+", p["name"] + " " + p["title"])}
        allowed |= {"connect", "recv", "socket", "reactor", "http", "api", "openapi", "epoll", "poll", "select", "english"}
        text = zh.js("return document.body.innerText")
        english = sorted({w for w in re.findall(r"[A-Za-z]{3,}", text) if w.lower() not in allowed})
        assert not english, f"中文: English words left: {english}"
        result = zh.js("return document.querySelector('#result').textContent")
        assert "加速" in result, f"中文: result {result!r}"
        shot = zh.screenshot("page-zh.png")
        zh.click("#lang-toggle")
        assert zh.js("return document.querySelector('h1').textContent") == "Slow poetry, live", "中文: the toggle"
        zh.click("#lang-toggle")
        return f"{result} (screenshot {shot})"
    finally:
        zh.quit()


class AxeDriver:
    """What axe-selenium-python asks of a Selenium driver, on this file's own WebDriver client."""
    def __init__(self, driver):
        self.driver = driver

    def execute_script(self, script):
        return self.driver.js(script)

    def execute_async_script(self, script):
        return self.driver.js_async(script)


def axe_finds_nothing_serious(driver, url):
    """axe-core (bundled by axe-selenium-python) on the finished race, in English and in Chinese."""
    from axe_selenium_python import Axe
    driver.resize(1280, 1500)
    found = []
    for language in ("en", "zh"):
        driver.go(url)
        driver.js(f"localStorage.setItem('poetry-lang', '{language}')")
        driver.go(url + "?scenario=seed&mode=all&delay=0.01")
        driver.wait("return document.body.dataset.finished === 'true'", what="axe: the race to finish")
        driver.js("document.querySelectorAll('details').forEach(d => d.open = true)")
        axe = Axe(AxeDriver(driver))
        axe.inject()
        results = axe.run()
        serious = [v for v in results["violations"] if v.get("impact") in ("serious", "critical")]
        found += [f"{language}: {v['id']} ({v['impact']}): {len(v['nodes'])} nodes, e.g. {v['nodes'][0]['html'][:120]}" for v in serious]
    driver.js("localStorage.removeItem('poetry-lang')")
    assert not found, "axe: " + "; ".join(found)
    return "no serious or critical violations, English and Chinese"


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
                  ("EventSource fetches once", "event-source-failed.png", lambda: event_source_fetches_once(driver, url)),
                  ("first run with --demo", "page-first-run-failed.png", lambda: first_run_with_demo(driver, binary)),
                  ("the link three times", "page-link-failed.png", lambda: link_reuses_servers(driver, url)),
                  ("wake-up numbers", "page-wakeups-failed.png", lambda: wakeup_numbers_agree(driver, url)),
                  ("1280px timeline", "page-1280-failed.png", lambda: wide_timeline_fits(driver, url)),
                  ("375px, reduced motion", "page-phone-failed.png", lambda: phone_with_reduced_motion(binary, driver_port, url)),
                  ("中文", "page-zh-failed.png", lambda: chinese_page(driver_port, url)),
                  ("axe", "page-axe-failed.png", lambda: axe_finds_nothing_serious(driver, url))]
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
