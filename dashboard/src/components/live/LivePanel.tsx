"use client";
import { Card } from "@/components/Card";
import { MinuteBars } from "@/components/MinuteBars";
import { PanelState, panelStatus } from "@/components/PanelState";
import { Skeleton } from "@/components/Skeleton";
import { liveRequest, type Loaded } from "@/lib/api";
import { formatCount, formatClock, formatInteger, formatMoneyCompact } from "@/lib/format";
import { usePolled } from "@/lib/usePolled";
import type { Live } from "@/types";

/** The last 15 minutes across all campaigns, per minute, refreshed every 10 s. */
export function LivePanel({ initial }: { initial?: Loaded<Live> }) {
  const { data, error, retry } = usePolled(liveRequest(), initial, true);
  const points = data?.points ?? [];
  const total = (key: "impressions" | "clicks" | "conversions" | "spend_micros") =>
    points.reduce((sum, p) => sum + p[key], 0);
  const impressions = total("impressions");
  // The last point is the minute in progress; the one before is the last complete minute.
  const lastFull = points.at(-2);

  return (
    <Card
      id="live"
      title={
        <>
          <span className="live-dot" aria-hidden="true" /> Live
        </>
      }
      subtitle="Last 15 minutes, all campaigns, refreshed every 10 s"
      className="panel-live"
      data-testid="live"
      data-state={panelStatus({ data, error })}
    >
      <PanelState
        data={data}
        error={error}
        onRetry={retry}
        skeleton={<Skeleton height={220} />}
        errorTitle="Live figures are unavailable"
        className="live"
      >
        {() => (
          <>
            <p className="live-figure">
              <span className="live-counter" data-testid="live-counter" data-value={impressions} title={formatInteger(impressions)}>
                {formatInteger(impressions)}
              </span>{" "}
              <span className="live-unit">impressions</span>
            </p>
            {impressions === 0 ? (
              <p className="live-note">No events in the last 15 minutes. Is traffic reaching the collector?</p>
            ) : null}
            <dl className="live-stats">
              <div>
                <dt>Clicks</dt>
                <dd>{formatCount(total("clicks"))}</dd>
              </div>
              <div>
                <dt>Conversions</dt>
                <dd>{formatCount(total("conversions"))}</dd>
              </div>
              <div>
                <dt>Spend</dt>
                <dd>{formatMoneyCompact(total("spend_micros"))}</dd>
              </div>
              <div>
                <dt>Last minute</dt>
                <dd>{lastFull ? `${formatCount(lastFull.impressions)}/min` : "—"}</dd>
              </div>
            </dl>
            <MinuteBars
              bars={points.map((p) => ({ t: Date.parse(p.t), value: p.impressions }))}
              label="Impressions"
              formatTime={(t) => formatClock(new Date(t))}
              formatValue={formatInteger}
            />
          </>
        )}
      </PanelState>
    </Card>
  );
}
