// @vitest-environment happy-dom
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { summaryRequest } from "@/lib/api";
import { ClockProvider } from "@/lib/clock";
import { resolveWindow } from "@/lib/range";
import { summary } from "@/test/fixtures";
import { KpiCards } from "./KpiCards";

vi.mock("next/navigation", () => import("@/test/navigation"));

const NOW = Date.parse("2026-11-27T14:05:42Z");
const window1h = resolveWindow({ kind: "preset", key: "1h" }, NOW);
const req = summaryRequest(window1h, null);

function renderCards(initial: Parameters<typeof KpiCards>[0]["initial"], campaignId: number | null = null) {
  return render(
    <ClockProvider serverNow={NOW}>
      <KpiCards initial={initial} campaignId={campaignId} />
    </ClockProvider>,
  );
}

describe("KpiCards", () => {
  beforeEach(() => window.history.replaceState(null, "", "/?range=1h"));
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("shows the server's answer at once, without asking again", () => {
    const fetch = vi.fn();
    vi.stubGlobal("fetch", fetch);
    renderCards({ url: req.url, data: summary("2026-11-27T13:06:00Z", "2026-11-27T14:06:00Z", { impressions: 1_000_000 }) });
    const cards = screen.getByTestId("kpi-cards");
    expect(cards.dataset.state).toBe("ready");
    expect(cards.dataset.url).toBe(req.url);
    expect(screen.getByTestId("kpi-impressions").textContent).toContain("1.23M");
    expect(screen.getByTestId("kpi-impressions").textContent).toContain("+23.5%");
    expect(screen.getByTestId("kpi-spend").textContent).toContain("$3,456.78");
    expect(screen.getByTestId("kpi-ctr").textContent).toContain("1.30%");
    expect(screen.getByTestId("kpi-roas").textContent).toContain("4.12×");
    expect(screen.getAllByRole("heading", { level: 3 })).toHaveLength(8);
    expect(fetch).not.toHaveBeenCalled();
  });

  it("fetches from its own origin when the server's answer is for another range", async () => {
    const fetch = vi.fn(async () => Response.json(summary("a", "b")));
    vi.stubGlobal("fetch", fetch);
    renderCards({ url: "/api/v1/summary?other", data: summary("x", "y") });
    await waitFor(() => expect(screen.getByTestId("kpi-cards").dataset.state).toBe("ready"));
    expect(fetch).toHaveBeenCalledWith(req.url, expect.anything());
  });

  it("asks for the campaign on a campaign page", async () => {
    const fetch = vi.fn(async () => Response.json(summary("a", "b")));
    vi.stubGlobal("fetch", fetch);
    renderCards(undefined, 42);
    await waitFor(() => expect(fetch).toHaveBeenCalled());
    expect(String((fetch.mock.calls[0] as unknown[])[0])).toContain("campaign_id=42");
  });

  it("says why there are no numbers, and offers to try again", async () => {
    renderCards({ url: req.url, error: "ClickHouse is unavailable" });
    expect(screen.getByRole("alert").textContent).toContain("ClickHouse is unavailable");
    const fetch = vi.fn(async () => Response.json(summary("a", "b")));
    vi.stubGlobal("fetch", fetch);
    screen.getByRole("button", { name: "Try again" }).click();
    await waitFor(() => expect(screen.getByTestId("kpi-cards").dataset.state).toBe("ready"));
  });

  it("shows one placeholder per card until the first answer", () => {
    vi.stubGlobal("fetch", vi.fn(() => new Promise(() => {})));
    renderCards(undefined);
    const cards = screen.getByTestId("kpi-cards");
    expect(cards.dataset.state).toBe("loading");
    expect(cards.getAttribute("aria-busy")).toBe("true");
    expect(cards.querySelectorAll(":scope > .kpi")).toHaveLength(8);
    expect(cards.querySelectorAll(".skeleton")).toHaveLength(24);
  });

  it("says when there is nothing to compare with", () => {
    renderCards({ url: req.url, data: summary("a", "b") });
    expect(screen.getByTestId("kpi-clicks").textContent).toContain("— no data in the previous 1 h");
  });
});
