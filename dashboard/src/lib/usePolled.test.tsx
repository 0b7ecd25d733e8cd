// @vitest-environment happy-dom
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { request } from "./api";
import { ClockProvider } from "./clock";
import { usePolled } from "./usePolled";

const wrapper = ({ children }: { children: ReactNode }) => <ClockProvider serverNow={0} intervalMs={60_000}>{children}</ClockProvider>;
const ask = (by: "country" | "device_type") =>
  request("/api/v1/breakdown", { from: "2026-11-27T13:00:00Z", to: "2026-11-27T14:00:00Z", by });

describe("usePolled", () => {
  afterEach(() => {
    cleanup();
    vi.unstubAllGlobals();
  });

  it("never shows a late answer to a question that was replaced", async () => {
    let answerFirst: (r: Response) => void = () => {};
    const fetch = vi
      .fn()
      .mockImplementationOnce(() => new Promise<Response>((resolve) => (answerFirst = resolve)))
      .mockImplementationOnce(async () => Response.json({ by: "device_type" }));
    vi.stubGlobal("fetch", fetch);
    const { result, rerender } = renderHook(({ by }) => usePolled(ask(by), undefined, false), {
      wrapper,
      initialProps: { by: "country" as "country" | "device_type" },
    });
    rerender({ by: "device_type" });
    await waitFor(() => expect(result.current.data).toEqual({ by: "device_type" }));
    await act(async () => answerFirst(Response.json({ by: "country" })));
    expect(result.current.data).toEqual({ by: "device_type" });
    expect(result.current.stale).toBe(false);
  });

  it("keeps the last good answer when a poll fails, and says why", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => Response.json({ detail: "ClickHouse is down" }, { status: 503 })));
    const { result } = renderHook(() => usePolled(ask("country"), { url: ask("country").url, data: { rows: [] } as never }, true), {
      wrapper,
    });
    expect(result.current.data).toEqual({ rows: [] });
    act(() => result.current.retry());
    await waitFor(() => expect(result.current.error).toBe("ClickHouse is down"));
    expect(result.current.data).toEqual({ rows: [] });
  });
});
