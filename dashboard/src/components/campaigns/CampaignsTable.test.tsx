// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { campaignsRequest } from "@/lib/api";
import { ClockProvider } from "@/lib/clock";
import { resolveWindow } from "@/lib/range";
import { campaignRow, campaigns } from "@/test/fixtures";
import { CampaignsTable } from "./CampaignsTable";

vi.mock("next/navigation", () => import("@/test/navigation"));
vi.mock("next/link", () => ({
  default: ({ href, children, prefetch: _prefetch, ...rest }: { href: string; children: React.ReactNode; prefetch?: boolean }) => (
    <a href={href} {...rest}>
      {children}
    </a>
  ),
}));

const NOW = Date.parse("2026-11-27T14:05:42Z");
const window1h = resolveWindow({ kind: "preset", key: "1h" }, NOW);
const firstPage = { q: "", sort: "spend_micros" as const, order: "desc" as const, limit: 25, offset: 0 };

function renderTable(rows = [campaignRow(1), campaignRow(2)], total = rows.length) {
  const req = campaignsRequest(window1h, firstPage);
  return render(
    <ClockProvider serverNow={NOW}>
      <CampaignsTable initial={{ url: req.url, data: campaigns(rows, total) }} />
    </ClockProvider>,
  );
}

describe("CampaignsTable", () => {
  beforeEach(() => {
    window.history.replaceState(null, "", "/?range=1h");
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        throw new Error(`unexpected fetch ${url}`);
      }),
    );
  });
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("lists campaigns with links to their pages that keep the range", () => {
    renderTable();
    const link = screen.getByRole("link", { name: "Campaign 2" });
    expect(link.getAttribute("href")).toBe("/campaigns/2?range=1h");
    expect(screen.getByTestId("page-info").textContent).toBe("1–2 of 2");
  });

  it("sorts by a column through the URL and asks the API in that order", async () => {
    const fetch = vi.fn(async () => Response.json(campaigns([campaignRow(2), campaignRow(1)])));
    vi.stubGlobal("fetch", fetch);
    renderTable();
    fireEvent.click(screen.getByRole("button", { name: /^Clicks/ }));
    expect(window.location.search).toBe("?range=1h&sort=clicks");
    await waitFor(() => expect(fetch).toHaveBeenCalled());
    expect(String((fetch.mock.calls[0] as unknown[])[0])).toContain("sort=clicks&to=");
    await waitFor(() => expect(screen.getByRole("columnheader", { name: /Clicks/ }).getAttribute("aria-sort")).toBe("descending"));
  });

  it("searches after a pause, back to the first page", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json(campaigns([]))));
    window.history.replaceState(null, "", "/?range=1h&page=2");
    renderTable();
    fireEvent.change(screen.getByTestId("campaign-search"), { target: { value: "shoes;" } });
    await waitFor(() => expect(window.location.search).toBe("?range=1h&q=shoes"));
    await waitFor(() => expect(screen.getByText("No campaign matches “shoes”")).toBeTruthy());
  });

  it("exports the same range, search and order as CSV", () => {
    window.history.replaceState(null, "", "/?range=1h&sort=ctr&order=asc");
    renderTable();
    const href = screen.getByTestId("export-csv").getAttribute("href") ?? "";
    expect(href).toMatch(/^\/api\/v1\/export\.csv\?/);
    expect(href).toContain("order=asc&sort=ctr");
  });

  it("pages forward", () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json(campaigns([]))));
    renderTable([campaignRow(1)], 60);
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(window.location.search).toBe("?range=1h&page=2");
  });
});
