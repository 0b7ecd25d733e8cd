import { describe, expect, it } from "vitest";
import { cleanSearch, DEFAULT_VIEW, paramsFromRecord, parseView, rangeParams, toSearch, viewParams } from "./view";

const parse = (query: string) => parseView(new URLSearchParams(query));

describe("parseView", () => {
  it("gives the defaults for an empty URL", () => {
    expect(parse("")).toEqual(DEFAULT_VIEW);
  });

  it("reads every parameter", () => {
    expect(parse("range=7d&g=day&metric=spend&q=shoes&sort=ctr&order=asc&page=3")).toEqual({
      range: { kind: "preset", key: "7d" },
      granularity: "day",
      metric: "spend_micros",
      q: "shoes",
      sort: "ctr",
      order: "asc",
      page: 3,
    });
  });

  it("reads a custom range", () => {
    const view = parse("range=custom&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z");
    expect(view.range).toEqual({
      kind: "custom",
      from: new Date("2026-11-01T00:00:00Z"),
      to: new Date("2026-11-02T00:00:00Z"),
    });
  });

  it("falls back to defaults for what it cannot read", () => {
    const view = parse("range=2y&g=week&metric=bogus&sort=drop&order=up&page=-1");
    expect(view).toEqual(DEFAULT_VIEW);
    expect(parse("range=custom&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z").range).toEqual(DEFAULT_VIEW.range);
  });

  it("drops what the API refuses in a search", () => {
    expect(parse("q=%27%3B%20drop%20table").q).toBe("drop table");
    expect(cleanSearch("a".repeat(150))).toHaveLength(100);
  });
});

describe("viewParams", () => {
  it("leaves defaults out of the URL", () => {
    expect(toSearch(viewParams(DEFAULT_VIEW))).toBe("");
  });

  it.each([
    "range=7d&g=day&metric=spend&q=shoes&sort=ctr&order=asc&page=3",
    "range=custom&from=2026-11-01T00%3A00%3A00Z&to=2026-11-02T00%3A00%3A00Z",
    "range=15m",
  ])("round-trips %s", (query) => {
    expect(viewParams(parse(query)).toString()).toBe(query);
  });

  it("keeps only the range for links to other pages", () => {
    expect(rangeParams(parse("range=1h&q=x&page=2").range).toString()).toBe("range=1h");
  });
});

describe("paramsFromRecord", () => {
  it("takes the first of repeated values", () => {
    expect(paramsFromRecord({ range: ["1h", "7d"], q: "x", none: undefined }).toString()).toBe("range=1h&q=x");
  });
});
