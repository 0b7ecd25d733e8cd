import { describe, expect, it } from "vitest";
import {
  formatAge,
  formatChange,
  formatCount,
  formatCountry,
  formatDevice,
  formatInteger,
  formatMoney,
  formatMoneyCompact,
  formatMultiple,
  formatPercent,
  formatRange,
  MISSING,
  relativeChange,
} from "./format";

describe("counts", () => {
  it.each([
    [0, "0"],
    [999, "999"],
    [9_999, "9,999"],
    [12_345, "12.3K"],
    [999_949, "999.9K"],
    [1_234_567, "1.23M"],
    [1_200_000, "1.2M"],
    [3_456_000_000, "3.46B"],
  ])("formatCount(%d) = %s", (value, text) => {
    expect(formatCount(value)).toBe(text);
  });

  it("shows every digit when asked", () => {
    expect(formatInteger(1_234_567)).toBe("1,234,567");
  });

  it.each([null, undefined, Number.NaN, Number.POSITIVE_INFINITY])("shows %s as missing", (value) => {
    expect(formatCount(value)).toBe(MISSING);
    expect(formatMoney(value)).toBe(MISSING);
    expect(formatPercent(value)).toBe(MISSING);
  });
});

describe("money in micros", () => {
  it("shows dollars and cents", () => {
    expect(formatMoney(3_456_780_000)).toBe("$3,456.78");
    expect(formatMoney(5_000)).toBe("$0.01");
    expect(formatMoney(0)).toBe("$0.00");
  });

  it("is compact from $100K", () => {
    expect(formatMoneyCompact(99_999_990_000)).toBe("$99,999.99");
    expect(formatMoneyCompact(123_456_000_000)).toBe("$123.46K");
    expect(formatMoneyCompact(1_234_567_000_000)).toBe("$1.23M");
  });
});

describe("ratios", () => {
  it("shows percentages with two decimals", () => {
    expect(formatPercent(0.0123)).toBe("1.23%");
    expect(formatPercent(0.5)).toBe("50.00%");
    expect(formatPercent(0)).toBe("0.00%");
  });

  it("shows ROAS as a multiple", () => {
    expect(formatMultiple(4.1234)).toBe("4.12×");
  });
});

describe("changes against the previous period", () => {
  it("is relative to the previous value", () => {
    expect(relativeChange(110, 100)).toBeCloseTo(0.1);
    expect(relativeChange(90, 100)).toBeCloseTo(-0.1);
  });

  it("has no meaning without a previous value", () => {
    expect(relativeChange(5, 0)).toBeNull();
    expect(relativeChange(5, null)).toBeNull();
    expect(relativeChange(null, 5)).toBeNull();
  });

  it("is signed with a true minus", () => {
    expect(formatChange(0.1234)).toBe("+12.3%");
    expect(formatChange(-0.045)).toBe("−4.5%");
    expect(formatChange(0)).toBe("0.0%");
    expect(formatChange(0.00001)).toBe("0.0%");
    expect(formatChange(null)).toBe(MISSING);
  });
});

describe("time", () => {
  it("says ages briefly", () => {
    expect(formatAge(3.7)).toBe("3 s");
    expect(formatAge(-2)).toBe("0 s");
    expect(formatAge(125)).toBe("2 min");
    expect(formatAge(7200)).toBe("2 h");
    expect(formatAge(3 * 86_400)).toBe("3 d");
  });

  it("shows ranges in UTC, briefly when they fit in a day", () => {
    const at = (iso: string) => new Date(iso);
    expect(formatRange(at("2026-11-27T13:05:00Z"), at("2026-11-27T14:05:00Z"))).toBe("Nov 27, 13:05 – 14:05 UTC");
    expect(formatRange(at("2026-11-20T00:00:00Z"), at("2026-11-27T00:00:00Z"))).toBe("Nov 20 – Nov 27 UTC");
    expect(formatRange(at("2026-11-26T23:37:00Z"), at("2026-11-27T23:37:00Z"))).toBe(
      "Nov 26, 23:37 – Nov 27, 23:37 UTC",
    );
  });
});

describe("dimension values", () => {
  it("names countries, and traffic that was not geolocated", () => {
    expect(formatCountry("US")).toBe("United States");
    expect(formatCountry("de")).toBe("Germany");
    expect(formatCountry("")).toBe("Unknown");
    expect(formatCountry("not a code")).toBe("not a code");
  });

  it("names devices", () => {
    expect(formatDevice("mobile")).toBe("Mobile");
    expect(formatDevice("ctv")).toBe("Connected TV");
    expect(formatDevice("smart_tv")).toBe("Smart TV");
    expect(formatDevice("")).toBe("Unknown");
  });
});
