"use client";
import { BarList } from "@/components/BarList";
import { Card } from "@/components/Card";
import { PanelState, panelStatus } from "@/components/PanelState";
import { Skeleton } from "@/components/Skeleton";
import { breakdownRequest, type Loaded } from "@/lib/api";
import { formatCount, formatCountry, formatDevice, formatPercent, formatRange } from "@/lib/format";
import { usePanelWindow } from "@/lib/usePanelWindow";
import { usePolled } from "@/lib/usePolled";
import type { Breakdown, Dimension } from "@/types";

const TITLES: Record<Dimension, string> = {
  country: "By country",
  device_type: "By device",
  publisher_id: "By publisher",
};
const HEADINGS: Record<Dimension, string> = { country: "Country", device_type: "Device", publisher_id: "Publisher" };
const LABELS: Record<Dimension, (value: string) => string> = {
  country: formatCountry,
  device_type: formatDevice,
  publisher_id: (value) => `Publisher ${value}`,
};

/** Impressions per value of one dimension, biggest first, with each value's CTR. */
export function BreakdownPanel({
  by,
  initial,
  campaignId,
}: {
  by: Dimension;
  initial?: Loaded<Breakdown>;
  campaignId: number | null;
}) {
  const { window, live } = usePanelWindow();
  const req = breakdownRequest(window, by, campaignId);
  const { data, error, stale, retry } = usePolled(req, initial, live);
  const shown = data?.rows.length ?? 0;
  const widened =
    data && (Date.parse(data.from) !== window.from.getTime() || Date.parse(data.to) !== window.to.getTime());
  const subtitle = data
    ? `Impressions and CTR${data.values_total > shown ? `, top ${shown} of ${data.values_total}` : ""}${
        widened ? `; whole hours, ${formatRange(new Date(data.from), new Date(data.to))}` : ""
      }`
    : "Impressions and CTR";
  const state = panelStatus({ data, error, stale, empty: shown === 0 });

  return (
    <Card
      id={`breakdown-${by}`}
      title={TITLES[by]}
      subtitle={subtitle}
      busy={state === "loading"}
      data-testid={`breakdown-${by}`}
      data-state={state}
      data-url={data && !stale ? req.url : undefined}
    >
      <PanelState
        data={data}
        error={error}
        onRetry={retry}
        skeleton={<Skeleton height={200} />}
        errorTitle="This breakdown is unavailable"
        empty={{ when: shown === 0, title: "No events in this range" }}
        warnOnError={false}
      >
        {(data) => (
          <>
            <div className="barlist-head" aria-hidden="true">
              <span>{HEADINGS[by]}</span>
              <span>Impressions</span>
              <span>CTR</span>
            </div>
            <BarList
              label={`Impressions ${TITLES[by].toLowerCase()}`}
              items={data.rows.map((row) => ({
                key: row.value,
                label: LABELS[by](row.value),
                value: row.impressions,
                display: formatCount(row.impressions),
                detail: formatPercent(row.ctr),
              }))}
            />
          </>
        )}
      </PanelState>
    </Card>
  );
}
