import { describe, expect, it } from "vitest";
import {
  allowedGranularities,
  bucketCount,
  checkCustom,
  DAY_MS,
  defaultGranularity,
  describeSpan,
  effectiveGranularity,
  fromInputValue,
  HOUR_MS,
  isLive,
  MINUTE_MS,
  PRESETS,
  resolveWindow,
  toInputValue,
  toIso,
  type RangeChoice,
  type Window,
} from "./range";

const NOW = Date.parse("2026-11-27T14:05:42.123Z");
const preset = (key: (typeof PRESETS)[number]["key"]): RangeChoice => ({ kind: "preset", key });
const windowOf = (from: string, to: string): Window => ({ from: new Date(from), to: new Date(to) });

describe("resolveWindow", () => {
  it("ends a preset with the minute in progress, aligned to minutes", () => {
    const w = resolveWindow(preset("1h"), NOW);
    expect(toIso(w.to)).toBe("2026-11-27T14:06:00Z");
    expect(toIso(w.from)).toBe("2026-11-27T13:06:00Z");
  });

  it.each(PRESETS.map((p) => [p.key, p.span] as const))("gives %s its span", (key, span) => {
    const w = resolveWindow(preset(key), NOW);
    expect(w.to.getTime() - w.from.getTime()).toBe(span);
    expect(w.from.getTime() % MINUTE_MS).toBe(0);
  });

  it("asks the same question all minute long (one cache entry)", () => {
    const a = resolveWindow(preset("24h"), Date.parse("2026-11-27T14:05:00.000Z"));
    const b = resolveWindow(preset("24h"), Date.parse("2026-11-27T14:05:59.999Z"));
    expect(a).toEqual(b);
  });

  it("takes a custom range as it is", () => {
    const range: RangeChoice = { kind: "custom", from: new Date("2026-11-01T00:00:00Z"), to: new Date("2026-11-02T00:00:00Z") };
    expect(resolveWindow(range, NOW)).toEqual({ from: range.from, to: range.to });
  });
});

describe("isLive", () => {
  it("polls presets and custom ranges that reach the present", () => {
    expect(isLive(preset("30d"), NOW)).toBe(true);
    expect(isLive({ kind: "custom", from: new Date(NOW - DAY_MS), to: new Date(NOW + MINUTE_MS) }, NOW)).toBe(true);
    expect(isLive({ kind: "custom", from: new Date(NOW - 2 * DAY_MS), to: new Date(NOW - DAY_MS) }, NOW)).toBe(false);
  });
});

describe("checkCustom", () => {
  it("widens to whole minutes", () => {
    const checked = checkCustom(new Date("2026-11-27T10:00:30Z"), new Date("2026-11-27T11:00:10Z"));
    expect(checked.ok && checked.range.kind === "custom" && [toIso(checked.range.from), toIso(checked.range.to)]).toEqual([
      "2026-11-27T10:00:00Z",
      "2026-11-27T11:01:00Z",
    ]);
  });

  it.each([
    [null, new Date(NOW), "Enter a valid start time."],
    [new Date(NOW), new Date("nonsense"), "Enter a valid end time."],
    [new Date(NOW), new Date(NOW - HOUR_MS), "The end must be after the start."],
    [new Date(NOW - 93 * DAY_MS), new Date(NOW), "A range can span at most 92 days."],
    [new Date(-DAY_MS), new Date(NOW), "The start must be after 1970-01-01."],
  ])("refuses %s to %s: %s", (from, to, problem) => {
    expect(checkCustom(from, to)).toEqual({ ok: false, problem });
  });
});

describe("granularity", () => {
  it.each([
    ["15m", ["minute"], "minute"],
    ["1h", ["minute"], "minute"],
    ["24h", ["minute", "hour"], "hour"],
    ["7d", ["hour", "day"], "hour"],
    ["30d", ["hour", "day"], "day"],
  ] as const)("offers %s %j and picks %s", (key, allowed, picked) => {
    const w = resolveWindow(preset(key), NOW);
    expect(allowedGranularities(w)).toEqual(allowed);
    expect(defaultGranularity(w)).toBe(picked);
  });

  it("stays within the API's limits: minute up to a day, hour up to 62 days", () => {
    expect(allowedGranularities(windowOf("2026-01-01T00:00:00Z", "2026-01-02T00:01:00Z"))).toEqual(["hour"]);
    expect(allowedGranularities(windowOf("2026-01-01T00:00:00Z", "2026-03-05T00:00:00Z"))).toEqual(["day"]);
  });

  it("keeps an asked granularity only where it is allowed", () => {
    const week = resolveWindow(preset("7d"), NOW);
    expect(effectiveGranularity(week, "day")).toBe("day");
    expect(effectiveGranularity(week, "minute")).toBe("hour");
    expect(effectiveGranularity(week, null)).toBe("hour");
  });

  it("counts buckets the way the API widens them", () => {
    expect(bucketCount(windowOf("2026-01-01T10:30:00Z", "2026-01-01T12:10:00Z"), "hour")).toBe(3);
    expect(bucketCount(windowOf("2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z"), "minute")).toBe(15);
  });
});

describe("inputs and labels", () => {
  it("round-trips datetime-local values as UTC", () => {
    const date = new Date("2026-11-27T14:05:00Z");
    expect(toInputValue(date)).toBe("2026-11-27T14:05");
    expect(fromInputValue("2026-11-27T14:05")).toEqual(date);
    expect(fromInputValue("27/11/2026")).toBeNull();
  });

  it("describes spans", () => {
    expect(describeSpan(resolveWindow(preset("15m"), NOW))).toBe("15 min");
    expect(describeSpan(resolveWindow(preset("24h"), NOW))).toBe("24 h");
    expect(describeSpan(resolveWindow(preset("7d"), NOW))).toBe("7 d");
    expect(describeSpan(resolveWindow(preset("1h"), NOW))).toBe("1 h");
  });
});
