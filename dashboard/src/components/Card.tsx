import type { ReactNode } from "react";

/** A titled panel. `actions` sit at the right of the title (switches, export links). */
export function Card({
  id,
  title,
  subtitle,
  actions,
  busy = false,
  className = "",
  children,
  ...data
}: {
  id: string;
  title: ReactNode;
  subtitle?: ReactNode;
  actions?: ReactNode;
  busy?: boolean;
  className?: string;
  children: ReactNode;
} & { [key: `data-${string}`]: string | undefined }) {
  return (
    <section className={`card ${className}`} aria-labelledby={`${id}-title`} aria-busy={busy} {...data}>
      <header className="card-head">
        <div>
          <h2 id={`${id}-title`} className="card-title">
            {title}
          </h2>
          {subtitle ? <p className="card-subtitle">{subtitle}</p> : null}
        </div>
        {actions ? <div className="card-actions">{actions}</div> : null}
      </header>
      <div className={busy ? "card-body is-busy" : "card-body"}>{children}</div>
    </section>
  );
}
