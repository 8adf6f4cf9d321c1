// Photographs a Home Assistant page in Chromium (Debian's) through playwright-core, signed in
// with tokens the test got from onboarding: the frontend reads them from localStorage's
// `hassTokens`, set before the page loads. Run by sim/stack/tests/home_assistant.rs when
// VOLTMESH_HA_SCREENSHOT is set (screenshot.sh sets everything up).
//
// Environment: HA_URL (http://127.0.0.1:PORT), HA_PAGE (a path), HA_TOKENS (JSON), HA_SCREENSHOT
// (the PNG to write), VOLTMESH_PLAYWRIGHT_DIR (where screenshot.sh ran `npm ci`),
// VOLTMESH_CHROMIUM (default /usr/bin/chromium).
"use strict";

const path = require("node:path");

// A 1x1 transparent PNG.
const BLANK_PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAAAUAAXpeqz8AAAAASUVORK5CYII=",
  "base64",
);

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

async function main() {
  const { chromium } = require(
    path.join(env("VOLTMESH_PLAYWRIGHT_DIR"), "node_modules", "playwright-core"),
  );
  const url = env("HA_URL");
  const tokens = env("HA_TOKENS");
  const browser = await chromium.launch({
    executablePath: process.env.VOLTMESH_CHROMIUM || "/usr/bin/chromium",
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: ["--no-sandbox"],
  });
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 960 },
      colorScheme: "light",
      locale: "en-US",
      timezoneId: "UTC",
    });
    await context.addInitScript(
      ([origin, saved]) => {
        if (window.location.origin === origin) {
          window.localStorage.setItem("hassTokens", saved);
        }
      },
      [url, tokens],
    );
    // Only Home Assistant itself is asked: no network beyond the loopback (brand icons come
    // from the internet; they are drawn as blank squares).
    await context.route(
      (target) => target.origin !== url,
      (route) =>
        route.request().resourceType() === "image"
          ? route.fulfill({ contentType: "image/png", body: BLANK_PNG })
          : route.abort(),
    );
    const page = await context.newPage();
    await page.goto(url + env("HA_PAGE"));
    // The device page is drawn once its entities are: wait for the household's totals and
    // controls (playwright's text locators see into the frontend's shadow roots).
    for (const name of ["Energy bought locally", "Paid for local energy", "Trading", "Buy limit"]) {
      await page.getByText(name, { exact: true }).first().waitFor({ timeout: 60_000 });
    }
    await page.getByText("kWh").first().waitFor({ timeout: 60_000 });
    // Then let the page settle: no request for 500 ms (the websocket does not count), fonts
    // loaded, two frames drawn.
    await page.waitForLoadState("networkidle");
    await page.evaluate(async () => {
      await document.fonts.ready;
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
    });
    await page.screenshot({ path: env("HA_SCREENSHOT") });
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
