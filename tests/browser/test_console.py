"""The browser console in headless Chromium against real servers on 127.0.0.1.

* GraphiQL from `weft serve`: the key and token entered once in the bar, the City query run,
  its result read from the page (screenshot target/console/graphiql.png); without a key the
  401 message shows (target/console/graphiql-401.png).
* The network page of a peer and of the genesis, with a genesis and three peers as real
  processes: all three listed; one killed (SIGKILL) is gone within the liveness window
  (target/console/network-peer.png, network-genesis.png).

Every request the pages make outside 127.0.0.1 is blocked and fails the test; so does a
refusal of the pages' Content Security Policy.
"""
import json
import time

from conftest import (
    ROOT_KEY,
    ROOT_TOKEN,
    SHOTS,
    call,
    genesis,
    serve,
    wait_for,
)

CITY_QUERY = "{ Local { Get { Things { City { name } } } } }"


def seed_city(base):
    s, b = call("POST", f"{base}/weaviate/v1/schema/things", {
        "class": "City",
        "properties": [{"name": "name", "@dataType": ["string"]}],
    })
    assert s == 200, (s, b)
    s, b = call("POST", f"{base}/weaviate/v1/things", {
        "thing": {"@context": "", "@class": "City", "schema": {"name": "Lisbon"}},
    })
    assert s in (200, 202), (s, b)


def run_query(page, query):
    page.wait_for_selector(".graphiql-query-editor .CodeMirror")
    page.evaluate(
        "q => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)",
        query,
    )
    page.click(".graphiql-execute-button")


def response_text(page):
    return page.evaluate(
        "() => { const cm = document.querySelector('.graphiql-response .CodeMirror');"
        " return cm ? cm.CodeMirror.getValue() : ''; }"
    )


def test_graphiql_runs_a_query_with_the_key_and_shows_the_401_without(browser):
    server = serve()
    try:
        base = server.url
        seed_city(base)

        page = browser.page()
        page.goto(f"{base}/weaviate/v1/graphql")
        page.wait_for_selector(".graphiql-container")
        # The key is asked once, in the bar.
        page.fill("#weft-key", ROOT_KEY)
        page.fill("#weft-token", ROOT_TOKEN)
        page.click("#weft-key-use")
        page.wait_for_selector("#weft-key-state")
        assert ROOT_KEY in page.inner_text("#weft-key-state")
        # The docs explorer shows the schema from introspection (with the key).
        page.wait_for_function(
            "() => { const d = document.querySelector('.graphiql-doc-explorer');"
            " return d && d.innerText.includes('Local'); }",
            timeout=15000,
        )
        run_query(page, CITY_QUERY)
        page.wait_for_function(
            "() => { const cm = document.querySelector('.graphiql-response .CodeMirror');"
            " return cm && cm.CodeMirror.getValue().includes('Lisbon'); }",
            timeout=15000,
        )
        answer = json.loads(response_text(page))
        assert answer == {"data": {"Local": {"Get": {"Things": {"City": [{"name": "Lisbon"}]}}}}}, answer
        assert page.is_hidden("#weft-message")
        page.screenshot(path=str(SHOTS / "graphiql.png"))
        # Reloading keeps the key (this tab's session storage): asked once.
        page.reload()
        page.wait_for_selector("#weft-key-state")
        assert ROOT_KEY in page.inner_text("#weft-key-state")

        # A fresh browser context has no key: the server's 401 message shows in the page.
        bare = browser.page()
        bare.goto(f"{base}/weaviate/v1/graphql")
        bare.wait_for_selector(".graphiql-container")
        run_query(bare, CITY_QUERY)
        bare.wait_for_selector("#weft-message:not([hidden])", timeout=15000)
        message = bare.inner_text("#weft-message")
        assert message.startswith("401: "), message
        assert "X-API-KEY" in message or "key" in message.lower(), message
        bare.wait_for_function(
            "() => { const cm = document.querySelector('.graphiql-response .CodeMirror');"
            " return cm && cm.CodeMirror.getValue().includes('401'); }",
            timeout=15000,
        )
        bare.screenshot(path=str(SHOTS / "graphiql-401.png"))

        # The start page links the console's parts; `/` sends a browser there.
        start = browser.page()
        start.goto(f"{base}/")
        assert start.url == f"{base}/weaviate/v1/console", start.url
        for link in ["#link-graphiql", "#link-swagger", "#link-openapi", "#link-network"]:
            assert start.is_visible(link), link
        start.screenshot(path=str(SHOTS / "start.png"))
    finally:
        server.kill()
    assert not browser.outside, browser.outside
    assert all(r.startswith("http://127.0.0.1:") or r.startswith("data:") for r in browser.requests), browser.requests


def peer_rows(page):
    return sorted(page.eval_on_selector_all("#peers tbody tr[data-peer]",
                                            "rows => rows.map(r => r.getAttribute('data-peer'))"))


def test_the_network_page_lists_three_peers_and_a_killed_one_goes(browser, tmp_dir):
    liveness = 1.5
    g = genesis(["--liveness-timeout", str(liveness), "--admin-key", "gk", "--admin-token", "gt"],
                tmp_dir / "genesis")
    peers = {}
    try:
        for name in ["alpha", "beta", "gamma"]:
            peers[name] = serve({
                "WEFT_PEER_NAME": name,
                "WEFT_GENESIS_URL": g.url,
                "WEFT_PUBLIC_URL": "http://127.0.0.1:0",
                "WEFT_PING_INTERVAL_S": "0.3",
            }, data_dir=tmp_dir / name)
        alpha = peers["alpha"].url
        # beta has a class: alpha downloads beta's schema and shows it.
        s, b = call("POST", f"{peers['beta'].url}/weaviate/v1/schema/things", {
            "class": "City", "properties": [{"name": "name", "@dataType": ["string"]}],
        })
        assert s == 200, (s, b)

        def known(base):
            s, b = call("GET", f"{base}/weaviate/v1/p2p/network")
            return sorted(p["name"] for p in b["peers"]) if s == 200 else None
        wait_for(lambda: known(alpha) == ["beta", "gamma"], 30, "alpha did not list beta and gamma")

        # The peer's page, with the key entered once.
        page = browser.page()
        page.goto(f"{alpha}/weaviate/v1/p2p/console")
        page.wait_for_selector("#weft-message:not([hidden])")
        assert page.inner_text("#weft-message").startswith("401: ")
        page.fill("#weft-key", ROOT_KEY)
        page.fill("#weft-token", ROOT_TOKEN)
        page.click("#weft-key-use")
        page.wait_for_function(
            "() => document.querySelectorAll('#peers tbody tr[data-peer]').length === 2",
            timeout=15000,
        )
        assert page.inner_text("#self-name") == "alpha"
        assert peer_rows(page) == ["beta", "gamma"]
        assert page.inner_text("#genesis-uri") == g.url
        page.wait_for_function(
            "() => { const r = document.querySelector(\"#peers tr[data-peer='beta']\");"
            " return r && r.innerText.includes('Things: City') && r.innerText.includes('(downloaded)'); }",
            timeout=15000,
        )
        beta = page.inner_text("#peers tr[data-peer='beta']")
        assert peers["beta"].url in beta, beta
        assert "alive" in beta, beta

        # The genesis's page, with its admin key: all three.
        gpage = browser.page()
        gpage.goto(f"{g.url}/console")
        gpage.fill("#weft-key", "gk")
        gpage.fill("#weft-token", "gt")
        gpage.click("#weft-key-use")
        gpage.wait_for_function(
            "() => document.querySelectorAll('#peers tbody tr[data-peer]').length === 3",
            timeout=15000,
        )
        assert peer_rows(gpage) == ["alpha", "beta", "gamma"]
        page.screenshot(path=str(SHOTS / "network-peer.png"), full_page=True)
        gpage.screenshot(path=str(SHOTS / "network-genesis.png"), full_page=True)

        # SIGKILL: no goodbye. The genesis drops gamma after `liveness` s of silence and tells
        # the others; both pages refresh every 3 s.
        killed = time.monotonic()
        peers["gamma"].kill()
        window = liveness + 3 + 5  # liveness, one page refresh, and slack for a loaded machine
        gpage.wait_for_function(
            "() => !document.querySelector(\"#peers tr[data-peer='gamma']\")"
            " && document.querySelectorAll('#peers tbody tr[data-peer]').length === 2",
            timeout=window * 1000,
        )
        page.wait_for_function(
            "() => !document.querySelector(\"#peers tr[data-peer='gamma']\")"
            " && document.querySelectorAll('#peers tbody tr[data-peer]').length === 1",
            timeout=window * 1000,
        )
        took = time.monotonic() - killed
        print(f"a killed peer left both pages after {took:.1f} s (liveness {liveness} s, refresh 3 s)")
        assert peer_rows(page) == ["beta"]
        assert peer_rows(gpage) == ["alpha", "beta"]
        page.screenshot(path=str(SHOTS / "network-peer-after-kill.png"), full_page=True)
    finally:
        for p in peers.values():
            p.kill()
        g.kill()
    assert not browser.outside, browser.outside
