import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ApiError,
  breakdownRequest,
  buildUrl,
  campaignsRequest,
  describeFailure,
  exportUrl,
  getJson,
  liveRequest,
  summaryRequest,
  timeseriesRequest,
} from "./api";

const window = { from: new Date("2026-11-27T13:00:00Z"), to: new Date("2026-11-27T14:00:00Z") };

describe("requests", () => {
  it("sort parameters and leave out empty ones, so equal questions have equal URLs", () => {
    expect(buildUrl("/x", { b: 2, a: "1", c: null, d: undefined, e: "" })).toBe("/x?a=1&b=2");
  });

  it("ask the summary with the previous period", () => {
    expect(summaryRequest(window, null).url).toBe(
      "/api/v1/summary?compare=previous&from=2026-11-27T13%3A00%3A00Z&to=2026-11-27T14%3A00%3A00Z",
    );
    expect(summaryRequest(window, 42).url).toContain("campaign_id=42");
  });

  it("filter every campaign panel by the campaign", () => {
    expect(timeseriesRequest(window, "minute", 7).query).toMatchObject({ granularity: "minute", campaign_id: 7 });
    expect(breakdownRequest(window, "country", 7).query).toMatchObject({ by: "country", campaign_id: 7 });
  });

  it("page and search the campaigns table, and export the same rows unpaged", () => {
    const table = { q: "shoes", sort: "ctr" as const, order: "asc" as const, limit: 25, offset: 50 };
    expect(campaignsRequest(window, table).url).toBe(
      "/api/v1/campaigns?from=2026-11-27T13%3A00%3A00Z&limit=25&offset=50&order=asc&q=shoes&sort=ctr&to=2026-11-27T14%3A00%3A00Z",
    );
    expect(exportUrl(window, table)).toBe(
      "/api/v1/export.csv?from=2026-11-27T13%3A00%3A00Z&order=asc&q=shoes&sort=ctr&to=2026-11-27T14%3A00%3A00Z",
    );
    expect(campaignsRequest(window, { ...table, q: "" }).url).not.toContain("q=");
  });

  it("ask live figures without parameters", () => {
    expect(liveRequest().url).toBe("/api/v1/live");
  });
});

describe("failures", () => {
  it("pass on the API's sentence", () => {
    expect(describeFailure(503, { detail: "ClickHouse is down" })).toBe("ClickHouse is down");
  });

  it("summarise validation problems", () => {
    const body = { detail: [{ loc: ["query", "from"], msg: "Input should be a valid datetime" }] };
    expect(describeFailure(422, body)).toBe("from: Input should be a valid datetime");
  });

  it("say something useful without a body", () => {
    expect(describeFailure(502, null)).toMatch(/did not answer/);
    expect(describeFailure(418, "teapot")).toBe("The adpulse API answered HTTP 418.");
  });
});

describe("getJson", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("returns the answer", async () => {
    const fetch = vi.fn(async () => Response.json({ points: [] }));
    vi.stubGlobal("fetch", fetch);
    await expect(getJson(liveRequest(), { baseUrl: "http://api" })).resolves.toEqual({ points: [] });
    expect(fetch).toHaveBeenCalledWith("http://api/api/v1/live", expect.objectContaining({ cache: "no-store" }));
  });

  it("throws the API's explanation", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ detail: "bad range" }, { status: 422 })));
    await expect(getJson(liveRequest())).rejects.toEqual(new ApiError("bad range", 422));
  });

  it("refuses an answer that is not JSON", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response('{"points": [', { status: 200 })));
    await expect(getJson(liveRequest())).rejects.toMatchObject({ status: 200, message: expect.stringMatching(/not JSON/) });
  });

  it("says when the server cannot be reached", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("fetch failed"))));
    await expect(getJson(liveRequest())).rejects.toMatchObject({ status: 0 });
  });
});

describe("getJson when cancelled", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("rejects, rather than answering null, when cancelled while reading the body", async () => {
    const controller = new AbortController();
    const body = new ReadableStream({
      start(stream) {
        stream.enqueue(new TextEncoder().encode('{"points": ['));
        controller.signal.addEventListener("abort", () => stream.error(new DOMException("aborted", "AbortError")));
      },
    });
    vi.stubGlobal("fetch", vi.fn(async () => new Response(body, { status: 200 })));
    const answer = getJson(liveRequest(), { signal: controller.signal });
    controller.abort();
    await expect(answer).rejects.toMatchObject({ name: "AbortError" });
  });
});
