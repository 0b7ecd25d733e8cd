import type { ReactNode } from "react";

/** The empty and error states of a panel: what happened, and what to do. */
export function StateMessage({
  kind,
  title,
  children,
  onRetry,
}: {
  kind: "empty" | "error";
  title: string;
  children?: ReactNode;
  onRetry?: () => void;
}) {
  return (
    <div className={`state state-${kind}`} role={kind === "error" ? "alert" : "status"}>
      <p className="state-title">{title}</p>
      {children ? <p className="state-text">{children}</p> : null}
      {onRetry ? (
        <button type="button" className="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}
