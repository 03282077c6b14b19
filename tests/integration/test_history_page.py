"""The decision-history page in a real browser: Debian's chromium, headless, driven by chromedriver
(python3-selenium), both started by this test on loopback and stopped after it. The browser loads
the page, fills in the search form and submits it, opens a decision's detail view and the summary;
the test asserts on the DOM chromium rendered and saves screenshots as artifacts
(MAILGATE_ARTIFACTS, else the test's temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_history import history_config, history_holds_the_log, send_known_traffic

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), \
        "chromium and chromium-driver are needed (scripts/install-deps.sh --test installs them)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def artifact(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("MAILGATE_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.mark.time_limit(120)
def test_a_browser_searches_and_opens_a_decision(start_gateway, sink, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait

    config, port = history_config(tmp_path)
    gw = start_gateway(config, sink=sink)
    ids = send_known_traffic(gw)
    total = history_holds_the_log(gw)
    base = f"http://127.0.0.1:{port}"
    wait = WebDriverWait(browser, 20)

    browser.get(base + "/history")
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tr.decision")
    assert len(rows) == total
    browser.save_screenshot(str(artifact(tmp_path, "history-all.png")))

    # A search as a person makes it: type a sender domain, choose an action, press Search.
    browser.find_element(By.ID, "from").send_keys("fraud.example")
    Select(browser.find_element(By.ID, "action")).select_by_visible_text("reject")
    browser.find_element(By.ID, "submit").click()
    wait.until(expected_conditions.url_contains("from=fraud.example"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#results tr.decision")
    assert len(rows) == 1
    cells = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[2] == "boss@fraud.example" and cells[3] == "dave@example.org"
    assert cells[4] == "Urgent <b>payment</b> & more"  # shown as text, not as markup
    assert cells[5] == "reject" and cells[6].startswith("550 5.7.1") and cells[7] == "rules"
    assert browser.find_element(By.ID, "from").get_attribute("value") == "fraud.example"
    browser.save_screenshot(str(artifact(tmp_path, "history-search.png")))

    # The detail view: every stage's verdict and the rule hits with their descriptions and scores.
    rows[0].find_element(By.CSS_SELECTOR, "a.detail").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "stages")))
    assert browser.find_element(By.ID, "action").text == "reject"
    assert browser.find_element(By.ID, "sender").text == "boss@fraud.example"
    assert browser.find_element(By.ID, "message_id").text == ids["refused"]
    stages = {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
              for row in browser.find_elements(By.CSS_SELECTOR, "#stages tr.stage")}
    assert stages.get("rules") == "reject", stages
    hits = [[cell.text for cell in hit.find_elements(By.TAG_NAME, "td")]
            for hit in browser.find_elements(By.CSS_SELECTOR, "table.hits tr.hit")]
    wire = [hit for hit in hits if hit[0] == "WIRE_MONEY"]
    assert len(wire) == 1 and float(wire[0][1]) == 20 and wire[0][2] == "Asks for a wire transfer", hits
    browser.save_screenshot(str(artifact(tmp_path, "history-detail.png")))

    # The summary: the figures of `mailgate log --summary` and the chart.
    browser.find_element(By.LINK_TEXT, "Summary").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "chart")))
    actions = {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
               for row in browser.find_elements(By.CSS_SELECTOR, "#actions tr")}
    assert {action: actions.get(action) for action in ("accept", "tag", "reject")} == \
        {"accept": "3", "tag": "1", "reject": "2"}, actions
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
    assert {bar.get_attribute("class") for bar in bars} >= {"bar accept", "bar reject", "bar tag"}
    assert all(float(bar.get_attribute("height")) > 0 for bar in bars)
    browser.save_screenshot(str(artifact(tmp_path, "history-summary.png")))
    assert artifact(tmp_path, "history-summary.png").stat().st_size > 1000
