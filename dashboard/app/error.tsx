"use client";

/** Last resort when rendering itself fails; panels handle API failures on their own. */
export default function RootError({ reset }: { error: Error; reset: () => void }) {
  return (
    <main id="main" className="page">
      <div className="state state-error" role="alert">
        <p className="state-title">The dashboard failed to render this view.</p>
        <p className="state-text">Try again; if it keeps failing, the dashboard server log says why.</p>
        <button type="button" className="button" onClick={reset}>
          Try again
        </button>
      </div>
    </main>
  );
}
