#!/usr/bin/env node
// End-to-end test of the dashboard in headless Debian Chromium, against a running local
// stack with events flowing (`adpulse up`). tests/dashboard/test_e2e.py starts the stack and
// runs this; it can also be run by hand:
//
//   node e2e/run.mjs --url http://127.0.0.1:3000 --api http://127.0.0.1:8000 \
//     [--api-key KEY] [--artifacts ../test-artifacts/dashboard]
//
// Prints one line per check ("ok - ..." or "not ok - ..."), saves screenshots of the main
// views in --artifacts, and exits 1 at the first failed check.
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { launch, LAPTOP, PHONE } from "./browser.mjs";

const require = createRequire(import.meta.url);
const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    api: { type: "string" },
    "api-key": { type: "string" },
    artifacts: { type: "string", default: "../test-artifacts/dashboard" },
  },
});
if (!args.url || !args.api) {
  console.error("usage: node e2e/run.mjs --url DASHBOARD_URL --api API_URL [--api-key KEY] [--artifacts DIR]");
  process.exit(2);
}
const BASE = args.url.replace(/\/+$/, "");
const API = args.api.replace(/\/+$/, "");
const KEY = args["api-key"];
const ARTIFACTS = resolve(args.artifacts);
mkdirSync(ARTIFACTS, { recursive: true });

const MINUTE = 60_000;
const KPI_FIELDS = ["impressions", "clicks", "conversions", "spend_micros", "ctr", "cvr", "cpa", "roas"];
const READY = (id) => `[data-testid="${id}"][data-state="ready"], [data-testid="${id}"][data-state="empty"]`;

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

async function eventually(what, fn, timeoutMs = 20_000, everyMs = 500) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false && value !== null) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new CheckFailed(`${what} (waited ${timeoutMs / 1000} s)${last ? `: ${last.message}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function api(path) {
  const response = await fetch(`${API}${path}`, { headers: KEY ? { Authorization: `Bearer ${KEY}` } : {} });
  check(response.ok, `API ${path} answered HTTP ${response.status}`);
  return response.json();
}

/** The number a card shows, read back from its text: 1.23M, $3,456.78, 1.23%, 4.12×. */
function readDisplayed(text) {
  const match = text.replace(/[$,×\s]/g, "").match(/^(-?[\d.]+)([KMBT%]?)$/);
  if (!match) return null;
  const scale = { "": 1, K: 1e3, M: 1e6, B: 1e9, T: 1e12, "%": 0.01 }[match[2]];
  return Number(match[1]) * scale;
}

/** The field in the unit a card shows: money in dollars, not micros. */
function shown(field, value) {
  return value === null ? null : field.endsWith("_micros") || field === "cpa" ? value / 1e6 : value;
}

// --- the browser -----------------------------------------------------------------------------

const problems = []; // console errors, page errors, failed requests: none are allowed
const bodies = []; // same-origin response texts, searched for the API key
let step = "start";

function watch(page) {
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`uncaught ${error.name} on ${page.url()}: ${error.message}`));
  page.on("requestfailed", (request) => {
    const failure = request.failure()?.errorText ?? "";
    // Requests cut short by navigation or a newer poll are not errors.
    if (!failure.includes("ERR_ABORTED")) problems.push(`request failed: ${request.url()} ${failure}`);
  });
  page.on("response", async (response) => {
    if (!response.url().startsWith(BASE)) return;
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
    if (KEY && /text|json|javascript/.test(response.headers()["content-type"] ?? "")) {
      bodies.push(await response.text().catch(() => ""));
    }
  });
}

async function ready(page, ...ids) {
  for (const id of ids) await page.locator(READY(id)).first().waitFor({ timeout: 30_000 });
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The KPI cards as shown: the question they answer and each card's value and text. */
async function readCards(page) {
  return page.evaluate(() => {
    const root = document.querySelector('[data-testid="kpi-cards"][data-state="ready"]');
    if (!root) return null;
    const cards = {};
    for (const card of root.querySelectorAll("[data-metric]")) {
      cards[card.dataset.metric] = {
        value: card.dataset.value === "" ? null : Number(card.dataset.value),
        text: card.querySelector(".kpi-value")?.textContent ?? "",
      };
    }
    return { url: root.dataset.url, cards };
  });
}

/** Each card shows the number the API returns for the same question. */
async function cardsMatchApi(page, wantInUrl = null) {
  return eventually(
    "KPI cards show the numbers the API returns",
    async () => {
      const shownCards = await readCards(page);
      check(shownCards?.url, "the KPI cards have no answer yet");
      // After a range change the cards may still hold the previous answer for a moment.
      check(!wantInUrl || decodeURIComponent(shownCards.url).includes(wantInUrl), `the KPI cards still show ${shownCards.url}`);
      const answer = await api(shownCards.url);
      for (const field of KPI_FIELDS) {
        const card = shownCards.cards[field];
        check(card, `no card for ${field}`);
        check(card.value === answer[field], `${field}: card ${card.value}, API ${answer[field]} for ${shownCards.url}`);
        const expected = shown(field, answer[field]);
        if (expected === null) {
          check(card.text === "—", `${field}: shows "${card.text}" for null`);
        } else {
          const read = readDisplayed(card.text);
          const tolerance = Math.max(Math.abs(expected) * 0.006, field === "ctr" || field === "cvr" ? 5e-5 : 0.006);
          check(read !== null && Math.abs(read - expected) <= tolerance, `${field}: shows "${card.text}", API ${expected}`);
        }
      }
      return { ...shownCards, answer };
    },
    30_000,
    1000,
  );
}

function windowOf(url) {
  const params = new URL(url, BASE).searchParams;
  return { from: Date.parse(params.get("from")), to: Date.parse(params.get("to")) };
}

function parseCsv(text) {
  const rows = [];
  for (const line of text.trim().split("\n")) {
    const cells = [];
    let cell = "";
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const ch = line[i];
      if (quoted) {
        if (ch === '"' && line[i + 1] === '"') (cell += '"'), i++;
        else if (ch === '"') quoted = false;
        else cell += ch;
      } else if (ch === '"') quoted = true;
      else if (ch === ",") cells.push(cell), (cell = "");
      else cell += ch;
    }
    cells.push(cell);
    rows.push(cells);
  }
  const [header, ...data] = rows;
  return data.map((cells) => Object.fromEntries(header.map((h, i) => [h, cells[i]])));
}

async function tableRows(page) {
  return page.$$eval('[data-testid="campaigns"] tbody tr', (rows) =>
    rows.map((row) => ({
      id: Number(row.dataset.campaignId),
      name: row.querySelector(".campaign-link")?.textContent ?? "",
      clicks: Number(row.querySelector('[data-key="clicks"]')?.dataset.value),
      impressions: Number(row.querySelector('[data-key="impressions"]')?.dataset.value),
    })),
  );
}

async function attr(page, testId, name) {
  return page.locator(`[data-testid="${testId}"]`).first().getAttribute(name);
}

// --- the checks ------------------------------------------------------------------------------

const checks = [];
const test = (name, fn) => checks.push({ name, fn });
const state = {};

test("events flow: the API has stored events", async () => {
  await eventually("the API reports a newest event", async () => (await api("/api/v1/freshness")).newest_event_time, 120_000, 1000);
});

test("the overview loads with every panel and no console errors", async ({ page }) => {
  await page.goto(`${BASE}/`);
  check((await page.title()) === "Overview · adpulse", `title is "${await page.title()}"`);
  await ready(page, "kpi-cards", "timeseries", "live", "breakdown-country", "breakdown-device_type", "campaigns");
  await page.evaluate(() => (window.__sameDocument = true));
  const badge = await eventually("the freshness badge has an answer", async () => {
    const level = await attr(page, "freshness", "data-level");
    return level && level !== "unknown" ? level : null;
  });
  check(badge === "ok", `the freshness badge says ${badge}: "${await page.locator('[data-testid="freshness"]').textContent()}"`);
  check(problems.length === 0, problems.join("\n"));
});

test("each KPI card shows the number the API returns for the same range", async ({ page }) => {
  const { url } = await cardsMatchApi(page);
  const { from, to } = windowOf(url);
  check(to - from === 24 * 60 * MINUTE, `the default range is 24 h, got ${url}`);
  state.overviewImpressions = (await readCards(page)).cards.impressions.value;
  await shot(page, "overview-laptop");
});

test("the live panel's counter rises within 15 s while events flow", async ({ page }) => {
  const before = Number(await attr(page, "live-counter", "data-value"));
  const after = await eventually(
    `the live counter rises from ${before}`,
    async () => {
      const now = Number(await attr(page, "live-counter", "data-value"));
      return now > before ? now : null;
    },
    15_000,
    250,
  );
  console.log(`#   live counter ${before} -> ${after}`);
});

test("changing the range changes the URL and the data, without reloading the page", async ({ page }) => {
  const before = await attr(page, "kpi-cards", "data-url");
  const pointsBefore = await attr(page, "timeseries", "data-points");
  await page.locator('[data-testid="range-picker"] [data-value="1h"]').click();
  await eventually("the URL has range=1h", async () => new URL(page.url()).searchParams.get("range") === "1h");
  const url = await eventually("the cards answer the 1 h range", async () => {
    const now = await attr(page, "kpi-cards", "data-url");
    return now && now !== before ? now : null;
  });
  const { from, to } = windowOf(url);
  check(to - from === 60 * MINUTE, `the cards ask for ${url}`);
  await cardsMatchApi(page);
  await ready(page, "timeseries");
  const points = await eventually("the chart answers the 1 h range", async () => {
    const now = await attr(page, "timeseries", "data-points");
    return now && now !== pointsBefore ? now : null;
  });
  check(points === "60", `the 1 h chart has ${points} points per minute, expected 60`);
  check(await page.evaluate(() => window.__sameDocument === true), "the page reloaded");
});

test("a custom range in the past shows the empty states", async ({ page }) => {
  const day = new Date(Date.now() - 3 * 24 * 60 * MINUTE).toISOString().slice(0, 10);
  await page.locator('[data-testid="range-picker"] [data-value="custom"]').click();
  await page.fill('[data-testid="custom-from"]', `${day}T10:00`);
  await page.fill('[data-testid="custom-to"]', `${day}T11:00`);
  await page.click('[data-testid="custom-apply"]');
  await eventually("the URL has the custom range", async () => {
    const params = new URL(page.url()).searchParams;
    return params.get("range") === "custom" && params.get("from") === `${day}T10:00:00Z` && params.get("to") === `${day}T11:00:00Z`;
  });
  const { answer } = await cardsMatchApi(page, `${day}T10:00`);
  check(answer.impressions === 0, `expected no events on ${day}, the API has ${answer.impressions}`);
  await page.locator('[data-testid="timeseries"][data-state="empty"]').waitFor();
  await page.locator('[data-testid="campaigns"][data-state="empty"]').waitFor();
  await page.locator('[data-testid="breakdown-country"][data-state="empty"]').waitFor();
  await shot(page, "empty-range");
  check(await page.evaluate(() => window.__sameDocument === true), "the page reloaded");
});

test("the campaigns table sorts, searches and pages", async ({ page }) => {
  await page.goto(`${BASE}/?range=15m`);
  await ready(page, "campaigns");
  await page.click('[data-testid="campaigns"] button[data-sort="clicks"]');
  await eventually("the URL has sort=clicks", async () => new URL(page.url()).searchParams.get("sort") === "clicks");
  const url = await eventually("the table answers sort=clicks", async () => {
    const now = await attr(page, "campaigns", "data-url");
    return now?.includes("sort=clicks") ? now : null;
  });
  const rows = await tableRows(page);
  check(rows.length > 0, "the table is empty");
  check(rows.every((r, i) => i === 0 || rows[i - 1].clicks >= r.clicks), "rows are not sorted by clicks, descending");
  const answer = await api(url);
  check(
    JSON.stringify(answer.rows.map((r) => r.campaign_id)) === JSON.stringify(rows.map((r) => r.id)),
    "the rows differ from the API's answer",
  );

  const wanted = rows[Math.min(2, rows.length - 1)];
  await page.fill('[data-testid="campaign-search"]', String(wanted.id));
  await eventually(`the table answers q=${wanted.id}`, async () => (await attr(page, "campaigns", "data-url"))?.includes(`q=${wanted.id}`));
  const found = await tableRows(page);
  check(found.some((r) => r.id === wanted.id), `campaign ${wanted.id} is not found by its id`);
  check(new URL(page.url()).searchParams.get("q") === String(wanted.id), "the search is not in the URL");
  await page.fill('[data-testid="campaign-search"]', "");
  await eventually("the search is cleared", async () => !(await attr(page, "campaigns", "data-url"))?.includes("q="));

  const total = Number(await attr(page, "campaigns", "data-total"));
  if (total > 25) {
    await page.click('[data-testid="next-page"]');
    await eventually("page 2 is shown", async () => (await page.textContent('[data-testid="page-info"]'))?.startsWith("26–"));
    check(new URL(page.url()).searchParams.get("page") === "2", "the page is not in the URL");
  }
});

test("CSV export downloads the rows shown", async ({ page }) => {
  // A range that ended a minute ago does not change while the table and the file are fetched;
  // on a stack that just started, wait until such a range holds events.
  const iso = (ms) => new Date(ms).toISOString().replace(".000Z", "Z");
  const { from, to } = await eventually(
    "a complete minute with events (has the stack run for two minutes?)",
    async () => {
      const to = Math.floor(Date.now() / MINUTE) * MINUTE - MINUTE;
      const from = to - 30 * MINUTE;
      const answer = await api(`/api/v1/campaigns?from=${iso(from)}&to=${iso(to)}&limit=1`);
      return answer.total > 0 ? { from, to } : null;
    },
    180_000,
    5_000,
  );
  await page.goto(`${BASE}/?range=custom&from=${iso(from)}&to=${iso(to)}`);
  await ready(page, "campaigns");
  const total = Number(await attr(page, "campaigns", "data-total"));
  check(total > 0, `no campaigns between ${iso(from)} and ${iso(to)}`);
  const rows = await tableRows(page);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="export-csv"]')]);
  check(/^adpulse-campaigns-.*\.csv$/.test(download.suggestedFilename()), `file name ${download.suggestedFilename()}`);
  const path = join(ARTIFACTS, download.suggestedFilename());
  await download.saveAs(path);
  const csv = parseCsv(readFileSync(path, "utf8"));
  check(csv.length === total, `the file has ${csv.length} rows, the table says ${total}`);
  rows.forEach((row, i) => {
    check(Number(csv[i]?.campaign_id) === row.id, `row ${i + 1}: table has campaign ${row.id}, file ${csv[i]?.campaign_id}`);
    check(Number(csv[i]?.impressions) === row.impressions, `row ${i + 1}: impressions differ`);
  });
  console.log(`#   ${download.suggestedFilename()}: ${csv.length} rows; the ${rows.length} shown come first, in order`);
  state.customUrl = page.url();
});

test("the campaign page shows the same panels, filtered to the campaign", async ({ page }) => {
  const first = (await tableRows(page))[0];
  const overview = await readCards(page);
  await page.click(`[data-testid="campaigns"] tr[data-campaign-id="${first.id}"] .campaign-link`);
  await eventually("the campaign page opens", async () => new URL(page.url()).pathname === `/campaigns/${first.id}`);
  check(new URL(page.url()).searchParams.get("range") === "custom", "the range was not kept");
  await ready(page, "kpi-cards", "timeseries", "breakdown-country", "breakdown-device_type");
  const { url, answer } = await cardsMatchApi(page);
  check(url.includes(`campaign_id=${first.id}`), `the cards ask ${url}`);
  check(answer.impressions === first.impressions, `impressions ${answer.impressions}, the table said ${first.impressions}`);
  check(answer.impressions < overview.cards.impressions.value, "the campaign has as many impressions as all campaigns");
  for (const id of ["timeseries", "breakdown-country", "breakdown-device_type"]) {
    check((await attr(page, id, "data-url"))?.includes(`campaign_id=${first.id}`), `${id} is not filtered`);
  }
  check((await page.textContent('[data-testid="campaign-heading"] h1')) === first.name, "the heading is not the campaign's name");
  check((await page.locator('[data-testid="campaigns"]').count()) === 0, "the campaign page shows the campaigns table");
  await shot(page, "campaign-laptop");
  state.campaignUrl = page.url();
});

test("labels and contrast pass an accessibility check (axe, WCAG 2.1 AA)", async ({ page }) => {
  const axe = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  for (const url of [`${BASE}/?range=15m`, state.campaignUrl]) {
    await page.goto(url);
    await ready(page, "kpi-cards", "timeseries", "breakdown-country");
    await page.addScriptTag({ content: axe });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
      return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}; ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
    });
    check(violations.length === 0, `${url}:\n  ${violations.join("\n  ")}`);
  }
});

test("the overview is readable on a phone", async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: PHONE.width, height: PHONE.height }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const page = await context.newPage();
  watch(page);
  await page.goto(`${BASE}/?range=1h`);
  await ready(page, "kpi-cards", "timeseries", "live", "campaigns");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await page.screenshot({ path: join(ARTIFACTS, "overview-phone.png"), fullPage: true });
  await page.screenshot({ path: join(ARTIFACTS, "overview-phone-top.png") });
  await context.close();
});

test("no console errors, failed requests or leaked keys anywhere", async () => {
  check(problems.length === 0, problems.join("\n"));
  if (KEY) check(!bodies.some((b) => b.includes(KEY)), "the API key reached the browser");
});

// --- run -------------------------------------------------------------------------------------

const browser = await launch();
const context = await browser.newContext({ viewport: LAPTOP, acceptDownloads: true });
const page = await context.newPage();
watch(page);
let failed = false;
const started = Date.now();
for (const { name, fn } of checks) {
  step = name;
  const t0 = Date.now();
  try {
    await fn({ page, browser });
    console.log(`ok - ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed = true;
    console.log(`not ok - ${name}\n#   ${String(error instanceof CheckFailed ? error.message : error.stack).replace(/\n/g, "\n#   ")}`);
    if (problems.length) console.log(`#   seen in the browser:\n#   ${problems.join("\n#   ")}`);
    await page.screenshot({ path: join(ARTIFACTS, "failure.png"), fullPage: true }).catch(() => {});
    break;
  }
}
await browser.close();
console.log(`# ${failed ? "FAILED at: " + step : "all checks passed"} in ${((Date.now() - started) / 1000).toFixed(0)} s; screenshots in ${ARTIFACTS}`);
process.exit(failed ? 1 : 0);
