import Link from "next/link";

export default function NotFound() {
  return (
    <main id="main" className="page">
      <div className="state state-empty">
        <h1 className="state-title">No such page</h1>
        <p className="state-text">Campaign pages are /campaigns/&lt;numeric id&gt;.</p>
        <Link href="/">Back to the overview</Link>
      </div>
    </main>
  );
}
