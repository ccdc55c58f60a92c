// The console's one stylesheet, served at /ui/assets/console.css (the CSP allows no inline style).
// System fonts only; status is always written as text, colour only repeats it; focus is always
// visible; below 48rem tables become one card per row, so a 390 px screen never scrolls sideways.
export const css = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a; --line: #d0d7de;
  --accent: #0b5cad; --ok: #116329; --bad: #a40e26; --warn: #7d4e00; --panel: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d; --accent: #58a6ff;
    --ok: #3fb950; --bad: #ff7b72; --warn: #d29922; --panel: #161b22; }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem; }
.skip:focus { left: .5rem; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { margin: 0; font-weight: 700; }
.brand a { color: inherit; text-decoration: none; }
nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem 1rem; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration-thickness: 3px; }
.session { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; margin-left: auto; }
.session p { margin: 0; color: var(--muted); }
main { padding: 1rem; max-width: 80rem; margin: 0 auto; }
main:focus { outline: none; }
.bottom { padding: 1rem; color: var(--muted); border-top: 1px solid var(--line); font-size: .875rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .5rem; }
.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: break-word; }
h1 .mono, dd.mono { word-break: break-all; }
button, input, select { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: .35rem .5rem; min-height: 2.25rem; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
.session button { background: transparent; color: var(--accent); }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; padding: .75rem; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
.field { display: flex; flex-direction: column; gap: .2rem; min-width: 9rem; flex: 1 1 9rem; }
.field label { font-size: .875rem; font-weight: 600; }
.actions { display: flex; gap: .75rem; align-items: center; }
.login { display: flex; flex-direction: column; gap: .5rem; max-width: 28rem; }
.error { color: var(--bad); font-weight: 600; }
.notice { padding: .5rem .75rem; border-left: 4px solid var(--warn); background: var(--panel); }
.count { font-size: 1rem; color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
th { font-size: .875rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 999px; border: 1px solid currentColor; font-size: .875rem; font-weight: 600; }
.status-valid, .status-issued, .status-approve, .status-recent { color: var(--ok); }
.status-revoked, .status-rejected, .status-failed, .status-reject, .status-silent { color: var(--bad); }
.status-expired, .status-pending, .status-signing, .status-stale { color: var(--warn); }
.detail { color: var(--muted); font-size: .875rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
figure.chart { margin: 0; }
figure.chart svg { width: 100%; height: auto; max-height: 20rem; }
.chart .bar { fill: var(--accent); }
.chart .axis { stroke: var(--fg); stroke-width: 1; }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.chart text { fill: var(--muted); font-size: 11px; }
figcaption { color: var(--muted); font-size: .875rem; margin: .25rem 0; }
details { margin: .5rem 0 1rem; }
@media (max-width: 48rem) {
  .session { margin-left: 0; }
  .mono, td { word-break: break-all; }
  .facts { grid-template-columns: 1fr; }
  .facts dd { margin-bottom: .4rem; }
  table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; width: 100%; }
  table.cards tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: .75rem; padding: .25rem 0; }
  table.cards td { border: 0; padding: .2rem .6rem; }
  table.cards td::before { content: attr(data-label); display: block; font-size: .75rem; font-weight: 600; color: var(--muted); }
}
`;
