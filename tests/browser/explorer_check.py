#!/usr/bin/env python3
"""Drives aiayn-attention --serve's explorer in headless Chromium (Selenium).

Types a sentence, submits it, and checks that the translation and heatmaps
appear; switches to the head view and checks that lines are drawn; masks a
head and checks that its lines are gone. Prints one line per check; exit 0
when all pass, 1 otherwise, 3 when Selenium or chromedriver is missing (the
caller skips). --screenshot keeps a picture of the head view.
"""
import argparse
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True, help="the explorer, e.g. http://127.0.0.1:8080/")
    ap.add_argument("--sentence", default="red cat sun hill")
    ap.add_argument("--kind", default="encoder_attention", help="the kind the head view shows")
    ap.add_argument("--layer", default="0", help="the layer the head view shows")
    ap.add_argument("--screenshot", help="PNG of the head view")
    ap.add_argument("--screenshot-layer", help="the layer (or all) the head view's PNG shows; default --layer")
    ap.add_argument("--heatmap-screenshot", help="PNG of the heatmaps")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args()
    try:
        from selenium import webdriver
        from selenium.common.exceptions import TimeoutException, WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import Select, WebDriverWait
    except ImportError as e:
        print(f"skipped: no Selenium ({e}); install python3-selenium")
        return 3

    profile = tempfile.TemporaryDirectory(prefix="aiayn-chromium-")
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", f"--user-data-dir={profile.name}",
                 f"--window-size={args.width},{args.height}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options)
    except WebDriverException as e:
        print(f"skipped: cannot start Chromium through chromedriver: {str(e).splitlines()[0]}")
        return 3
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    def status():
        return driver.find_element(By.ID, "status").text

    wait = WebDriverWait(driver, 60)
    try:
        driver.get(args.url)
        wait.until(lambda d: status().startswith("type a sentence:") or "error" in status())
        check(status().startswith("type a sentence:"), f"the page read the model's shape: {status()!r}")
        check(len(driver.find_elements(By.CSS_SELECTOR, "#mask-grid input")) > 0, "the head-mask grid is drawn")
        box = driver.find_element(By.ID, "text")
        box.send_keys(args.sentence)
        box.send_keys(Keys.ENTER)
        wait.until(lambda d: d.find_element(By.ID, "translation").text.strip() != ""
                   and status().startswith("rendered"))
        translation = driver.find_element(By.ID, "translation").text
        check(translation.strip() != "", f"a translation appears: {translation!r}")
        check(driver.find_element(By.ID, "alignment").text.startswith("alignment:"),
              f"an alignment appears: {driver.find_element(By.ID, 'alignment').text!r}")
        canvases = driver.find_elements(By.CSS_SELECTOR, "#panels canvas")
        check(len(canvases) > 0, f"heatmaps appear: {len(canvases)} ({status()!r})")
        if args.heatmap_screenshot:
            Select(driver.find_element(By.ID, "kind")).select_by_value(args.kind)
            wait.until(lambda d: status().startswith("rendered"))
            driver.save_screenshot(args.heatmap_screenshot)
            print(f"screenshot: {args.heatmap_screenshot}")

        Select(driver.find_element(By.ID, "kind")).select_by_value(args.kind)
        Select(driver.find_element(By.ID, "layer")).select_by_value(args.layer)
        Select(driver.find_element(By.ID, "view")).select_by_value("heads")
        wait.until(lambda d: status().startswith("drew the lines"))
        lines = driver.find_elements(By.CSS_SELECTOR, "#panels svg line")
        check(len(lines) > 0, f"the head view draws lines: {len(lines)} ({status()!r})")
        head0 = driver.find_elements(By.CSS_SELECTOR, '#panels svg g[data-head="0"] line')
        check(len(head0) > 0, f"head 0 has lines: {len(head0)}")

        # Masking head 0 of this layer: its weights come back zero, so its lines go.
        stack = {"encoder_attention": "enc", "decoder_attention": "dec", "cross_attention": "cross"}[args.kind]
        driver.find_element(By.CSS_SELECTOR, "#masks summary").click()
        before = status()
        driver.find_element(By.CSS_SELECTOR, f'#mask-grid input[data-head="{stack}:{args.layer}:0"]').click()
        wait.until(lambda d: status().startswith("drew the lines") and
                   d.find_element(By.ID, "masked").text == f"{stack}:{args.layer}:0")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#panels svg g[data-head="0"] line')) == 0)
        check(True, f"masking {stack}:{args.layer}:0 removes head 0's lines (status was {before!r})")
        driver.find_element(By.CSS_SELECTOR, f'#mask-grid input[data-head="{stack}:{args.layer}:0"]').click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#panels svg g[data-head="0"] line')) > 0)
        check(True, "unmasking brings them back")
        driver.find_element(By.CSS_SELECTOR, "#masks summary").click()
        if args.screenshot:
            Select(driver.find_element(By.ID, "layer")).select_by_value(args.screenshot_layer or args.layer)
            driver.save_screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot}")
        logs = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        check(not logs, f"no errors in the browser's console: {logs}")
    except TimeoutException:
        check(False, f"timed out; the page says {status()!r}")
    except WebDriverException as e:
        check(False, f"{type(e).__name__}: {str(e).splitlines()[0]}")
    finally:
        driver.quit()
        profile.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
