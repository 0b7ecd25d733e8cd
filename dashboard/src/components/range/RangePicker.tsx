"use client";
import { useState, type FormEvent } from "react";
import { Segmented } from "@/components/Segmented";
import { useClock } from "@/lib/clock";
import { formatRange } from "@/lib/format";
import { checkCustom, fromInputValue, PRESETS, resolveWindow, toInputValue, type PresetKey } from "@/lib/range";
import { useView } from "@/lib/useView";

type Choice = PresetKey | "custom";

/** Presets and a custom range, kept in the URL (pushed, so Back returns to the last range). */
export function RangePicker() {
  const [view, setView] = useView();
  const { now, refresh } = useClock();
  const window = resolveWindow(view.range, now);
  const [editing, setEditing] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const current: Choice = view.range.kind === "custom" ? "custom" : view.range.key;

  const choose = (choice: Choice) => {
    if (choice === "custom") {
      setFrom(toInputValue(window.from));
      setTo(toInputValue(window.to));
      setProblem(null);
      setEditing(true);
      return;
    }
    setEditing(false);
    setView({ range: { kind: "preset", key: choice }, page: 1 }, "push");
    refresh();
  };
  const apply = (event: FormEvent) => {
    event.preventDefault();
    const checked = checkCustom(fromInputValue(from), fromInputValue(to));
    if (!checked.ok) {
      setProblem(checked.problem);
      return;
    }
    setEditing(false);
    setView({ range: checked.range, page: 1 }, "push");
    refresh();
  };

  return (
    <div className="range">
      <Segmented
        label="Time range"
        testId="range-picker"
        value={editing ? "custom" : current}
        onChange={choose}
        options={[...PRESETS.map((p) => ({ value: p.key, label: p.label, title: `The ${p.long}` })), { value: "custom", label: "Custom" }]}
      />
      <p className="range-label" data-testid="range-label">
        {formatRange(window.from, window.to)}
      </p>
      {editing ? (
        <form className="range-form" onSubmit={apply} aria-label="Custom range" noValidate>
          <label>
            From (UTC)
            <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} required data-testid="custom-from" />
          </label>
          <label>
            To (UTC)
            <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} required data-testid="custom-to" />
          </label>
          <button type="submit" className="button button-primary" data-testid="custom-apply">
            Apply
          </button>
          <button type="button" className="button" onClick={() => setEditing(false)}>
            Cancel
          </button>
          {problem ? (
            <p className="form-problem" role="alert">
              {problem}
            </p>
          ) : null}
        </form>
      ) : null}
    </div>
  );
}
