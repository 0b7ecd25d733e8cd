// @vitest-environment happy-dom
import { cleanup, render } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { BarList } from "./BarList";
import { Delta } from "./Delta";
import { MinuteBars } from "./MinuteBars";

afterEach(cleanup);

describe("Delta", () => {
  it("colours good news and bad news", () => {
    const up = render(<Delta change={0.1234} tone="good" against="24 h" />).container;
    expect(up.textContent).toBe("▲ +12.3% vs previous 24 h");
    expect(up.querySelector(".delta-good")).not.toBeNull();
    const down = render(<Delta change={-0.05} tone="bad" against="24 h" />).container;
    expect(down.querySelector(".delta-bad")?.getAttribute("title")).toBe("down −5.0% against the previous 24 h");
  });
});

describe("BarList", () => {
  it("scales bars to the largest value", () => {
    const { container } = render(
      <BarList
        label="By country"
        items={[
          { key: "US", label: "United States", value: 200, display: "200" },
          { key: "DE", label: "Germany", value: 50, display: "50" },
        ]}
      />,
    );
    const bars = [...container.querySelectorAll<HTMLElement>(".barlist-bar")].map((b) => b.style.width);
    expect(bars).toEqual(["100%", "25%"]);
  });
});

describe("MinuteBars", () => {
  it("tells screen readers each minute's value, the last one in progress", () => {
    const { container } = render(
      <MinuteBars
        label="Impressions"
        bars={[
          { t: 0, value: 10 },
          { t: 60_000, value: 5 },
        ]}
        formatTime={(t) => `m${t / 60_000}`}
        formatValue={String}
      />,
    );
    expect([...container.querySelectorAll(".visually-hidden")].map((e) => e.textContent)).toEqual([
      "m0: 10",
      "m1 (in progress): 5",
    ]);
  });
});
