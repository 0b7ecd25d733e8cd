import type { ReactNode } from "react";
import { StateMessage } from "./StateMessage";

export type PanelStatus = "loading" | "empty" | "error" | "ready";

/**
 * A panel's state for its `data-state` and `aria-busy`. An answer to an earlier question
 * (`stale`) counts as loading, though it stays on screen until the new answer arrives.
 */
export function panelStatus({
  data,
  error,
  empty = false,
  stale = false,
}: {
  data: unknown;
  error: string | undefined;
  empty?: boolean;
  stale?: boolean;
}): PanelStatus {
  if (data === undefined) return error ? "error" : "loading";
  return stale ? "loading" : empty ? "empty" : "ready";
}

export interface PanelStateProps<T> {
  /** The newest answer; shown whenever there is one, even while a newer one is on its way. */
  data: T | undefined;
  /** Why the newest attempt failed: the error state without an answer, a warning above one. */
  error: string | undefined;
  /** Asks again: the error state's "Try again" button. */
  onRetry: () => void;
  /** Stands in until the first answer or error, e.g. `<Skeleton height={200} />`. */
  skeleton: ReactNode;
  /** The error state's title, e.g. "The chart is unavailable"; the error itself is its text. */
  errorTitle: string;
  /** The empty state, shown instead of `children` when `when` holds. Omit if the content says so itself. */
  empty?: { when: boolean; title: string; text?: ReactNode };
  /** Warn "Showing the last answer: …" above the content when a refresh failed (default true). */
  warnOnError?: boolean;
  /** A class for an element around the content and its warning; without it they are bare. */
  className?: string;
  /** A class for an element around the empty or error message, e.g. to span a grid row. */
  messageClassName?: string;
  /** The loaded content, given the answer. */
  children: (data: T) => ReactNode;
}

/**
 * The body of a panel in each of its states: the content, the empty message, the error with a
 * retry, or the skeleton. An answer wins over an error, so a failed refresh keeps the numbers up.
 */
export function PanelState<T>({
  data,
  error,
  onRetry,
  skeleton,
  errorTitle,
  empty,
  warnOnError = true,
  className,
  messageClassName,
  children,
}: PanelStateProps<T>) {
  const message = (node: ReactNode) => (messageClassName ? <div className={messageClassName}>{node}</div> : node);
  if (data === undefined) {
    return error
      ? message(
          <StateMessage kind="error" title={errorTitle} onRetry={onRetry}>
            {error}
          </StateMessage>,
        )
      : skeleton;
  }
  if (empty?.when) {
    return message(
      <StateMessage kind="empty" title={empty.title}>
        {empty.text}
      </StateMessage>,
    );
  }
  const content = (
    <>
      {warnOnError && error ? <p className="inline-warning">Showing the last answer: {error}</p> : null}
      {children(data)}
    </>
  );
  return className ? <div className={className}>{content}</div> : content;
}
