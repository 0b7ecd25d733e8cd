import { describe, expect, it } from "vitest";
import { CHART_METRICS, KPI_METRICS, METRICS, metricBySlug, toneOf } from "./metrics";

describe("the metric catalogue", () => {
  it("has the eight headline cards the issue asks for", () => {
    expect(KPI_METRICS.map((k) => METRICS[k].label)).toEqual([
      "Impressions",
      "Clicks",
      "Conversions",
      "Spend",
      "CTR",
      "CVR",
      "CPA",
      "ROAS",
    ]);
  });

  it("finds metrics by their URL name", () => {
    for (const key of CHART_METRICS) expect(metricBySlug(METRICS[key].slug)).toBe(key);
    expect(metricBySlug("nope")).toBeNull();
  });

  it("judges a rise by the metric", () => {
    expect(toneOf("clicks", 0.1)).toBe("good");
    expect(toneOf("clicks", -0.1)).toBe("bad");
    expect(toneOf("cpa", 0.1)).toBe("bad");
    expect(toneOf("cpa", -0.1)).toBe("good");
    expect(toneOf("ctr", 0)).toBe("neutral");
    expect(toneOf("ctr", null)).toBe("neutral");
  });

  it("formats money from micros", () => {
    expect(METRICS.spend_micros.format(1_500_000)).toBe("$1.50");
    expect(METRICS.cpa.format(null)).toBe("—");
  });
});
