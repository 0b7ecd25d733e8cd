// @vitest-environment happy-dom
import { cleanup, render } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { KpiCards } from "@/components/kpi/KpiCards";
import { ClockProvider } from "@/lib/clock";
import { KpiFallback } from "./sections";

vi.mock("next/navigation", () => import("@/test/navigation"));

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("KpiFallback", () => {
  it("is the markup KpiCards shows while loading, so nothing jumps when it takes over", () => {
    window.history.replaceState(null, "", "/?range=1h");
    vi.stubGlobal("fetch", vi.fn(() => new Promise(() => {})));
    const fallback = render(<KpiFallback />).container.innerHTML;
    cleanup();
    const loading = render(
      <ClockProvider serverNow={Date.parse("2026-11-27T14:05:42Z")}>
        <KpiCards campaignId={null} />
      </ClockProvider>,
    ).container.innerHTML;
    expect(fallback).toContain('data-state="loading"');
    expect(fallback).toBe(loading);
  });
});
