"""The chat page in a real browser: the app runs under uvicorn on a loopback port, headless Chromium
(driven by Selenium) holds a conversation — type, send, wait for the cards, open the evidence, refine in a
second turn — and the DOM is checked. Item titles carry markup (tests/serve/conftest.py); it must show as
text and never run. Skipped only where Chromium is not installed."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kerec.api import Recommender
from kerec.serve import create_app

from .conftest import genre_name

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the background-networking flags Chromium keeps calling home, which floods a closed network.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,1600")
WAIT = 30.0


@pytest.fixture(scope="module")
def server_url(serve_rec: Recommender) -> Iterator[str]:
    import uvicorn

    from kerec.chat import ChatEngine

    app = create_app(serve_rec, chat_engine=ChatEngine(serve_rec, k=3))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with the driver path below, Selenium Manager fetches nothing
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium')}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def send(driver: object, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "message")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def wait_for_bot_turns(driver: object, count: int) -> list[object]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".turn.bot")) >= count
        and d.find_element(By.ID, "send").is_enabled())
    return driver.find_elements(By.CSS_SELECTOR, ".turn.bot")


def cards_of(turn: object) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return [(c.get_attribute("data-item"), c.find_element(By.CSS_SELECTOR, "h3").text)
            for c in turn.find_elements(By.CSS_SELECTOR, ".card")]


def test_a_conversation_in_the_browser(server_url: str, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(server_url)
    assert driver.title == "kerec — chat"
    driver.find_element(By.ID, "user").send_keys("u1")

    # turn 1: a genre the user (who likes dramas) does not usually watch
    send(driver, "I'd like a comedy")
    first = wait_for_bot_turns(driver, 1)[-1]
    cards = cards_of(first)
    assert len(cards) == 3, first.text
    assert all(genre_name(item) == "Comedy" for item, _ in cards), cards
    # titles with markup are shown as text: the characters are on screen, no element was made of them
    shown = " ".join(t for _, t in cards)
    assert "<img src=x onerror=" in shown or "<script>" in shown, shown
    assert not driver.find_elements(By.CSS_SELECTOR, ".card img, .card script")
    assert driver.execute_script("return window.__xss === undefined")
    user_turn = driver.find_elements(By.CSS_SELECTOR, ".turn.user")[-1]
    assert user_turn.text == "I'd like a comedy"

    # evidence: closed, then opened by a click, listing facts
    details = first.find_elements(By.CSS_SELECTOR, ".card details")[0]
    facts = details.find_elements(By.CSS_SELECTOR, "li.fact")
    assert facts and not facts[0].is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert details.get_attribute("open") is not None
    assert facts[0].is_displayed() and facts[0].text.strip()
    assert "f" in facts[0].find_element(By.CSS_SELECTOR, ".fact-ids").text  # fact ids shown

    # the subgraph picture of this reply loads (an SVG from /subgraph.svg)
    img = first.find_element(By.CSS_SELECTOR, "figure.subgraph img")
    assert "/subgraph.svg?" in img.get_attribute("src") and "user=u1" in img.get_attribute("src")
    WebDriverWait(driver, WAIT).until(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img))

    # turn 2 refines: other comedies than those just shown
    send(driver, "something else")
    second = wait_for_bot_turns(driver, 2)[-1]
    refined = cards_of(second)
    assert refined and all(genre_name(item) == "Comedy" for item, _ in refined), refined
    assert not {i for i, _ in refined} & {i for i, _ in cards}

    # a message with markup is shown as typed and answered with a notice; nothing runs
    hostile = '<b>hi</b><img src=x onerror="window.__xss=3">'
    send(driver, hostile)
    third = wait_for_bot_turns(driver, 3)[-1]
    assert driver.find_elements(By.CSS_SELECTOR, ".turn.user")[-1].text == hostile
    assert third.find_elements(By.CSS_SELECTOR, ".notice, .text")
    assert not driver.find_elements(By.CSS_SELECTOR, ".turn b, .turn img:not(figure.subgraph img)")
    assert driver.execute_script("return window.__xss === undefined")

    # a new conversation clears the page and starts a fresh session
    old = driver.execute_script("return sessionStorage.getItem('kerec-session')")
    driver.find_element(By.ID, "new").click()
    WebDriverWait(driver, WAIT).until(lambda d: not d.find_elements(By.CSS_SELECTOR, ".turn"))
    assert driver.execute_script("return sessionStorage.getItem('kerec-session')") != old
