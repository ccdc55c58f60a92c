// The smaller pages: custodians (when each was last heard from), the current CRL, the audit chain,
// and the charts (inline SVG drawn on the server; each with its numbers as a table too).
export const custodians = `<% layout("@layout", it) %>
<h1>Custodians</h1>
<p>Threshold: <%= it.threshold %> of <%= it.rows.length %>. Last contact is the last message a custodian signed (heartbeat, approval or signing message), on any replica.</p>
<table class="cards">
  <thead><tr><th scope="col">Custodian</th><th scope="col">Last contact</th><th scope="col">Via</th><th scope="col">State</th></tr></thead>
  <tbody>
<% for (const c of it.rows) { %>
    <tr>
      <td data-label="Custodian"><%= c.name %></td>
      <td data-label="Last contact"><% if (c.lastContact) { %><time datetime="<%= c.lastContact %>"><%= it.when(c.lastContact) %></time> (<%= c.ago %>)<% } else { %>never<% } %></td>
      <td data-label="Via"><%= c.via ?? '' %></td>
      <td data-label="State"><span class="status status-<%= c.state %>"><%= c.stateText %></span></td>
    </tr>
<% } %>
  </tbody>
</table>
`;

export const crl = `<% layout("@layout", it) %>
<h1>Certificate revocation list</h1>
<% if (!it.crl) { %>
<p>No CRL has been signed yet.</p>
<% } else { %>
<dl class="facts">
  <dt>CRL number</dt><dd><%= it.crl.number %></dd>
  <dt>This update</dt><dd><time datetime="<%= it.crl.thisUpdate %>"><%= it.when(it.crl.thisUpdate) %></time></dd>
  <dt>Next update</dt><dd><time datetime="<%= it.crl.nextUpdate %>"><%= it.when(it.crl.nextUpdate) %></time><% if (it.crl.stale) { %> <span class="status status-revoked">overdue</span><% } %></dd>
  <dt>Revoked</dt><dd><%= it.crl.entries.length %> serial<%= it.crl.entries.length === 1 ? '' : 's' %></dd>
  <dt>Download</dt><dd><a href="/crl.pem">crl.pem</a>, <a href="/crl">DER</a></dd>
</dl>
<% if (it.crl.entries.length > 0) { %>
<table class="cards">
  <caption>Revoked serials</caption>
  <thead><tr><th scope="col">Serial</th><th scope="col">Revoked at</th><th scope="col">Reason</th></tr></thead>
  <tbody>
<% for (const e of it.crl.entries) { %>
    <tr>
      <td data-label="Serial" class="mono"><%= e.serial %></td>
      <td data-label="Revoked at"><time datetime="<%= e.revokedAt %>"><%= it.when(e.revokedAt) %></time></td>
      <td data-label="Reason"><%= e.reason %></td>
    </tr>
<% } %>
  </tbody>
</table>
<% } %>
<% } %>
`;

export const audit = `<% layout("@layout", it) %>
<h1>Audit chain</h1>
<% if (!it.verdict) { %>
<p class="notice" role="status">The audit chain is empty: nothing has been recorded yet.</p>
<% } else if (it.verdict.ok) { %>
<p class="notice" role="status"><span class="status status-valid">verified</span> <%= it.verdict.checked %> entr<%= it.verdict.checked === 1 ? 'y' : 'ies' %> checked at <time datetime="<%= it.checkedAt %>"><%= it.when(it.checkedAt) %></time>: every link and hash, every custodian signature against the roster, <%= it.verdict.certificates %> certificate<%= it.verdict.certificates === 1 ? '' : 's' %> against their approvals, <%= it.verdict.checkpoints %> checkpoint<%= it.verdict.checkpoints === 1 ? '' : 's' %>.<% if (it.capped) { %> Checked the first <%= it.read %> of <%= it.head.seq %> entries; run <code>tca audit verify</code> for all.<% } else if (it.truncated) { %> Checked the first <%= it.read %> of <%= it.head.seq %> entries: the newer ones are checked on a load at least <%= it.recheckSeconds %> s after this check.<% } %></p>
<% } else { %>
<p class="error" role="alert"><span class="status status-revoked">broken</span> at entry <%= it.verdict.firstBroken ? it.verdict.firstBroken.seq : '?' %>: <%= it.verdict.firstBroken ? it.verdict.firstBroken.reason : 'unknown' %> (<%= it.verdict.checked %> entries before it checked).</p>
<% } %>
<% if (it.head) { %>
<dl class="facts">
  <dt>Head</dt><dd>entry <%= it.head.seq %></dd>
  <dt>Head hash</dt><dd class="mono"><%= it.head.hash %></dd>
</dl>
<% } %>
<% if (it.entries.length > 0) { %>
<table class="cards">
  <caption>The latest <%= it.entries.length %> entries, newest first</caption>
  <thead><tr><th scope="col">#</th><th scope="col">At</th><th scope="col">Event</th><th scope="col">About</th><th scope="col">Hash</th></tr></thead>
  <tbody>
<% for (const e of it.entries) { %>
    <tr>
      <td data-label="#"><%= e.seq %></td>
      <td data-label="At"><time datetime="<%= e.at %>"><%= it.when(e.at) %></time></td>
      <td data-label="Event"><%= e.kind %></td>
      <td data-label="About" class="mono"><% if (e.subject && ['request', 'approval', 'rejection', 'issuance'].includes(e.kind)) { %><a href="/ui/requests/<%= e.subject %>"><%= e.subject %></a><% } else { %><%= e.subject ?? '' %><% } %></td>
      <td data-label="Hash" class="mono"><%= e.hash.slice(0, 16) %>…</td>
    </tr>
<% } %>
  </tbody>
</table>
<% } %>
`;

export const chart = `<figure class="chart">
<svg role="img" aria-labelledby="<%= it.id %>-t <%= it.id %>-d" viewBox="0 0 <%= it.width %> <%= it.height %>" preserveAspectRatio="xMidYMid meet">
  <title id="<%= it.id %>-t"><%= it.title %></title>
  <desc id="<%= it.id %>-d"><%= it.summary %></desc>
  <line class="axis" x1="<%= it.left %>" y1="<%= it.bottom %>" x2="<%= it.width - 4 %>" y2="<%= it.bottom %>"></line>
<% for (const t of it.ticks) { %>
  <line class="grid" x1="<%= it.left %>" y1="<%= t.y %>" x2="<%= it.width - 4 %>" y2="<%= t.y %>"></line>
  <text class="tick" x="<%= it.left - 6 %>" y="<%= t.y + 4 %>" text-anchor="end"><%= t.value %></text>
<% } %>
<% for (const b of it.bars) { %>
  <rect class="bar" x="<%= b.x %>" y="<%= b.y %>" width="<%= b.width %>" height="<%= b.height %>"><title><%= b.label %>: <%= b.value %></title></rect>
<% if (b.showLabel) { %>
  <text class="label" x="<%= b.x + b.width / 2 %>" y="<%= it.bottom + 16 %>" text-anchor="middle"><%= b.short %></text>
<% } %>
<% } %>
</svg>
<figcaption><%= it.title %>. <%= it.summary %></figcaption>
<details>
  <summary>Show the numbers</summary>
  <table>
    <thead><tr><th scope="col"><%= it.unit %></th><th scope="col">Certificates</th></tr></thead>
    <tbody>
<% for (const b of it.bars) { %>
      <tr><td><%= b.label %></td><td><%= b.value %></td></tr>
<% } %>
    </tbody>
  </table>
</details>
</figure>
`;

export const charts = `<% layout("@layout", it) %>
<h1>Charts</h1>
<% if (it.truncated) { %>
<p class="notice">Only the first <%= it.limit %> certificates of each range are counted.</p>
<% } %>
<section aria-labelledby="issued-h">
<h2 id="issued-h">Issued per day</h2>
<%~ include("@chart", it.issued) %>
</section>
<section aria-labelledby="expiring-h">
<h2 id="expiring-h">Expiring per week</h2>
<%~ include("@chart", it.expiring) %>
</section>
`;
