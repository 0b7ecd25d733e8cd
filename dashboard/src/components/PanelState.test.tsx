// @vitest-environment happy-dom
import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PanelState, panelStatus, type PanelStateProps } from "./PanelState";
import { Skeleton } from "./Skeleton";

afterEach(cleanup);

type Answer = { rows: string[] };

function renderPanel(props: Partial<PanelStateProps<Answer>> & Pick<PanelStateProps<Answer>, "data" | "error">) {
  const { data } = props;
  return render(
    <PanelState<Answer>
      onRetry={() => {}}
      skeleton={<Skeleton height={120} />}
      errorTitle="The rows are unavailable"
      empty={{ when: data?.rows.length === 0, title: "No rows in this range", text: "Pick another range." }}
      {...props}
    >
      {(answer) => <ul data-testid="rows">{answer.rows.map((row) => <li key={row}>{row}</li>)}</ul>}
    </PanelState>,
  ).container;
}

describe("PanelState", () => {
  it("shows the skeleton and nothing else before the first answer", () => {
    const panel = renderPanel({ data: undefined, error: undefined });
    expect(panel.querySelector(".skeleton")).not.toBeNull();
    expect(panel.textContent).toBe("");
    expect(screen.queryByRole("alert")).toBeNull();
    expect(screen.queryByRole("status")).toBeNull();
  });

  it("says the answer is empty, and what to do", () => {
    const panel = renderPanel({ data: { rows: [] }, error: undefined });
    const status = screen.getByRole("status");
    expect(status.className).toBe("state state-empty");
    expect(status.textContent).toBe("No rows in this range" + "Pick another range.");
    expect(panel.querySelector(".skeleton")).toBeNull();
    expect(screen.queryByTestId("rows")).toBeNull();
  });

  it("shows the error with a retry when there is no answer", () => {
    const onRetry = vi.fn();
    renderPanel({ data: undefined, error: "ClickHouse is unavailable", onRetry });
    const alert = screen.getByRole("alert");
    expect(alert.className).toBe("state state-error");
    expect(alert.querySelector(".state-title")?.textContent).toBe("The rows are unavailable");
    expect(alert.querySelector(".state-text")?.textContent).toBe("ClickHouse is unavailable");
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(onRetry).toHaveBeenCalledOnce();
  });

  it("renders the content with the answer", () => {
    const panel = renderPanel({ data: { rows: ["a", "b"] }, error: undefined });
    expect(screen.getByTestId("rows").textContent).toBe("ab");
    expect(panel.querySelector(".inline-warning")).toBeNull();
    expect(panel.querySelector(".skeleton")).toBeNull();
  });

  it("keeps the last answer when a refresh fails, with a warning above it", () => {
    const panel = renderPanel({ data: { rows: ["a"] }, error: "timed out" });
    expect(panel.firstElementChild?.className).toBe("inline-warning");
    expect(panel.firstElementChild?.textContent).toBe("Showing the last answer: timed out");
    expect(screen.getByTestId("rows").textContent).toBe("a");
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("can keep the last answer without the warning", () => {
    const panel = renderPanel({ data: { rows: ["a"] }, error: "timed out", warnOnError: false });
    expect(panel.querySelector(".inline-warning")).toBeNull();
    expect(screen.getByTestId("rows").textContent).toBe("a");
  });

  it("has no empty state unless given one", () => {
    renderPanel({ data: { rows: [] }, error: undefined, empty: undefined });
    expect(screen.getByTestId("rows").textContent).toBe("");
    expect(screen.queryByRole("status")).toBeNull();
  });

  it("wraps the content with its warning, and the messages, in the classes given", () => {
    const loaded = renderPanel({ data: { rows: ["a"] }, error: "timed out", className: "live" });
    expect(loaded.children).toHaveLength(1);
    expect(loaded.firstElementChild?.className).toBe("live");
    expect(loaded.firstElementChild?.querySelector(":scope > .inline-warning")).not.toBeNull();
    cleanup();
    const failed = renderPanel({ data: undefined, error: "down", messageClassName: "kpis-error" });
    expect(failed.firstElementChild?.className).toBe("kpis-error");
    expect(failed.querySelector(".kpis-error > .state-error")).not.toBeNull();
    cleanup();
    const empty = renderPanel({ data: { rows: [] }, error: undefined, messageClassName: "kpis-error" });
    expect(empty.querySelector(".kpis-error > .state-empty")).not.toBeNull();
  });
});

describe("panelStatus", () => {
  it.each([
    [{ data: undefined, error: undefined }, "loading"],
    [{ data: undefined, error: "down" }, "error"],
    [{ data: {}, error: undefined }, "ready"],
    [{ data: {}, error: "down" }, "ready"],
    [{ data: {}, error: undefined, empty: true }, "empty"],
    [{ data: {}, error: "down", empty: true }, "empty"],
    // An answer to an earlier question stays on screen, but the panel is loading the new one.
    [{ data: {}, error: undefined, stale: true }, "loading"],
    [{ data: {}, error: undefined, empty: true, stale: true }, "loading"],
    [{ data: undefined, error: "down", stale: true }, "error"],
  ] as const)("%j is %s", (input, expected) => {
    expect(panelStatus(input)).toBe(expected);
  });
});
