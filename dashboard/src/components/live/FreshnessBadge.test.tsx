import { describe, expect, it } from "vitest";
import { freshness } from "@/test/fixtures";
import { describeFreshness, FRESHNESS_WARN_S } from "./FreshnessBadge";

describe("describeFreshness", () => {
  it("says how old the data is", () => {
    expect(describeFreshness(freshness(3.2), undefined, 0)).toMatchObject({ level: "ok", text: "Data as of 3 s ago" });
  });

  it("counts up between polls", () => {
    expect(describeFreshness(freshness(3), undefined, 5).text).toBe("Data as of 8 s ago");
  });

  it("warns past the threshold", () => {
    expect(describeFreshness(freshness(FRESHNESS_WARN_S + 1), undefined, 0)).toMatchObject({
      level: "warn",
      text: "Data is 1 min old: ingest may be behind",
    });
  });

  it("says when nothing is stored yet, and when the API is down", () => {
    expect(describeFreshness(freshness(null), undefined, 0).text).toBe("No data yet");
    expect(describeFreshness(undefined, "The adpulse API does not answer.", 0)).toMatchObject({
      level: "error",
      text: "API unreachable",
    });
  });
});
