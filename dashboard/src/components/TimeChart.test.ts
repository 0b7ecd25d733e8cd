import { describe, expect, it } from "vitest";
import { chartRows } from "./TimeChart";

describe("chartRows", () => {
  const points = [
    { t: 0, value: 5 },
    { t: 1, value: 6 },
    { t: 2, value: 2 },
  ];

  it("draws the bucket in progress apart, joined to the one before", () => {
    expect(chartRows(points, 2)).toEqual([
      { t: 0, value: 5, partial: null },
      { t: 1, value: 6, partial: 6 },
      { t: 2, value: null, partial: 2 },
    ]);
  });

  it("draws everything solid for a range in the past", () => {
    expect(chartRows(points, undefined).map((r) => r.partial)).toEqual([null, null, null]);
    expect(chartRows(points, 99).map((r) => r.value)).toEqual([5, 6, 2]);
  });
});
