import { afterEach, describe, expect, it, vi } from "vitest";
import { liveRequest } from "./api";
import { apiConfig, load, proxy, upstreamFor } from "./server-api";

const KEY = "adp_secret_key_for_tests";
const withKey = { baseUrl: "http://api:8000", key: KEY };

describe("apiConfig", () => {
  it("defaults to the local API without a key", () => {
    expect(apiConfig({})).toEqual({ baseUrl: "http://127.0.0.1:8000", key: null });
  });

  it("reads ADPULSE_API_URL and ADPULSE_API_KEY", () => {
    expect(apiConfig({ ADPULSE_API_URL: "http://api:8000/", ADPULSE_API_KEY: KEY })).toEqual(withKey);
  });
});

describe("upstreamFor", () => {
  it("adds the server's key", () => {
    expect(upstreamFor(["summary"], "?from=a", withKey)).toEqual({
      url: "http://api:8000/api/v1/summary?from=a",
      headers: { Accept: "application/json, text/csv", Authorization: `Bearer ${KEY}` },
    });
  });

  it("sends no Authorization header in local mode", () => {
    expect(upstreamFor(["live"], "", { baseUrl: "http://x", key: null })?.headers).not.toHaveProperty("Authorization");
  });

  it.each([[[]], [[".."]], [["..", "healthz"]], [["a/b"]], [["%2e%2e"]], [[".hidden"]]])("refuses %j", (segments) => {
    expect(upstreamFor(segments, "", withKey)).toBeNull();
  });
});

describe("proxy", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("forwards the answer and its useful headers, never the key", async () => {
    const fetch = vi.fn(
      async () =>
        new Response("campaign_id\n1\n", {
          headers: { "content-type": "text/csv", "content-disposition": 'attachment; filename="x.csv"', "x-internal": "1" },
        }),
    );
    vi.stubGlobal("fetch", fetch);
    const answer = await proxy(["export.csv"], "?from=a", new AbortController().signal, withKey);
    expect(await answer.text()).toBe("campaign_id\n1\n");
    expect(answer.headers.get("content-disposition")).toBe('attachment; filename="x.csv"');
    expect(answer.headers.get("x-internal")).toBeNull();
    expect([...answer.headers.values()].join(" ")).not.toContain(KEY);
    expect(fetch.mock.calls[0]).toMatchObject(["http://api:8000/api/v1/export.csv?from=a", { headers: { Authorization: `Bearer ${KEY}` } }]);
  });

  it("turns a refused key into an operator's problem, not a browser challenge", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response("{}", { status: 401, headers: { "www-authenticate": "Bearer" } })));
    vi.spyOn(console, "error").mockImplementation(() => {});
    const answer = await proxy(["summary"], "", new AbortController().signal, withKey);
    expect(answer.status).toBe(502);
    expect(answer.headers.get("www-authenticate")).toBeNull();
    expect((await answer.json()).detail).toMatch(/ADPULSE_API_KEY/);
  });

  it("answers 502 when the API is down", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Promise.reject(new TypeError("ECONNREFUSED"))));
    vi.spyOn(console, "error").mockImplementation(() => {});
    const answer = await proxy(["live"], "", new AbortController().signal, withKey);
    expect(answer.status).toBe(502);
  });

  it("answers 404 for paths it will not forward", async () => {
    expect((await proxy([".."], "", new AbortController().signal, withKey)).status).toBe(404);
  });
});

describe("load", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("gives the panel data or a sentence", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ points: [] })));
    await expect(load(liveRequest(), withKey)).resolves.toEqual({ url: "/api/v1/live", data: { points: [] } });
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ detail: "ClickHouse is down" }, { status: 503 })));
    await expect(load(liveRequest(), withKey)).resolves.toEqual({ url: "/api/v1/live", error: "ClickHouse is down" });
  });
});
