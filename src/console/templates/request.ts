// One request (GET /api/v1/requests/{id} as a page): what was asked, who approved or rejected it
// and when, and how signing went: attempts, events and the custodians found at fault.
export const request = `<% layout("@layout", it) %>
<% const r = it.request; %>
<h1>Request <span class="mono"><%= r.id %></span></h1>
<section aria-labelledby="summary-h">
<h2 id="summary-h">Summary</h2>
<dl class="facts">
  <dt>Status</dt><dd><span class="status status-<%= r.status %>"><%= r.status %></span></dd>
  <dt>Requester</dt><dd><%= r.requester %></dd>
  <dt>Profile</dt><dd><%= r.profile %></dd>
  <dt>Subject</dt><dd><%= r.subject || '(empty)' %></dd>
  <dt>Names</dt><dd><%= r.sans.map((s) => s.type + ':' + s.value).join(', ') || '(none)' %></dd>
  <dt>Key</dt><dd><%= r.keyType %></dd>
  <dt>Serial</dt><dd class="mono"><%= r.serial %></dd>
  <dt>Validity</dt><dd><time datetime="<%= r.notBefore %>"><%= it.when(r.notBefore) %></time> to <time datetime="<%= r.notAfter %>"><%= it.when(r.notAfter) %></time></dd>
  <dt>Submitted</dt><dd><time datetime="<%= r.createdAt %>"><%= it.when(r.createdAt) %></time></dd>
  <dt>Approvals</dt><dd><%= r.approvals.filter((a) => a.decision === 'approve').length %> of <%= r.threshold %> needed<% if (r.missing > 0) { %> (<%= r.missing %> missing)<% } %></dd>
<% if (r.renewalOf) { %>
  <dt>Renews</dt><dd class="mono"><%= r.renewalOf %></dd>
<% } %>
<% if (r.failure) { %>
  <dt>Failure</dt><dd><%= r.failure %></dd>
<% } %>
  <dt>TBS SHA-256</dt><dd class="mono"><%= r.tbsSha256 %></dd>
</dl>
</section>

<section aria-labelledby="approvals-h">
<h2 id="approvals-h">Approvals and rejections</h2>
<% if (r.approvals.length === 0) { %>
<p>No custodian has decided yet.</p>
<% } else { %>
<table class="cards">
  <thead><tr><th scope="col">Custodian</th><th scope="col">Decision</th><th scope="col">At</th><th scope="col">Valid until</th><th scope="col">Reason</th></tr></thead>
  <tbody>
<% for (const a of r.approvals) { %>
    <tr>
      <td data-label="Custodian"><%= a.custodian %></td>
      <td data-label="Decision"><span class="status status-<%= a.decision %>"><%= a.decision === 'approve' ? 'approved' : 'rejected' %></span></td>
      <td data-label="At"><time datetime="<%= a.at %>"><%= it.when(a.at) %></time></td>
      <td data-label="Valid until"><time datetime="<%= a.expiresAt %>"><%= it.when(a.expiresAt) %></time></td>
      <td data-label="Reason"><%= a.reason ?? '' %></td>
    </tr>
<% } %>
  </tbody>
</table>
<% } %>
<% if (r.rejection) { %>
<p class="error">Rejected by <strong><%= r.rejection.by %></strong>: <%= r.rejection.reason %></p>
<% } %>
</section>

<section aria-labelledby="signing-h">
<h2 id="signing-h">Signing</h2>
<% if (!r.signing) { %>
<p>Not signed yet: signing starts once <%= r.threshold %> custodians approved.</p>
<% } else { %>
<dl class="facts">
  <dt>Job</dt><dd class="mono"><%= r.signing.job %></dd>
  <dt>Attempt</dt><dd><%= r.signing.attempt %></dd>
<% if (r.signing.signers) { %>
  <dt>Waiting for</dt><dd><%= r.signing.signers.waitingFor.join(', ') || 'nobody' %> (<%= r.signing.signers.missing %> more share(s) needed, <%= r.signing.signers.available %> signer(s) available)</dd>
<% } %>
</dl>
<h3>Culprits</h3>
<% if (r.signing.culprits.length === 0) { %>
<p>No custodian was found at fault.</p>
<% } else { %>
<table class="cards">
  <thead><tr><th scope="col">Custodian</th><th scope="col">Reason</th></tr></thead>
  <tbody>
<% for (const c of r.signing.culprits) { %>
    <tr><td data-label="Custodian"><%= c.custodian %></td><td data-label="Reason"><%= c.reason %></td></tr>
<% } %>
  </tbody>
</table>
<% } %>
<h3>Events</h3>
<% if (r.signing.events.length === 0) { %>
<p>No events.</p>
<% } else { %>
<table class="cards">
  <thead><tr><th scope="col">At</th><th scope="col">Event</th><th scope="col">Custodian</th><th scope="col">Detail</th></tr></thead>
  <tbody>
<% for (const e of r.signing.events) { %>
    <tr>
      <td data-label="At"><time datetime="<%= e.at %>"><%= it.when(e.at) %></time></td>
      <td data-label="Event"><%= e.kind %></td>
      <td data-label="Custodian"><%= e.custodian ?? '' %></td>
      <td data-label="Detail"><%= e.detail ?? '' %></td>
    </tr>
<% } %>
  </tbody>
</table>
<% } %>
<% } %>
</section>

<% if (r.origin) { %>
<section aria-labelledby="origin-h">
<h2 id="origin-h">Origin: ACME</h2>
<dl class="facts">
  <dt>Account</dt><dd class="mono"><%= r.origin.account %></dd>
  <dt>Order</dt><dd class="mono"><%= r.origin.order %></dd>
</dl>
<table class="cards">
  <thead><tr><th scope="col">Identifier</th><th scope="col">Challenge</th><th scope="col">Validated at</th></tr></thead>
  <tbody>
<% for (const i of r.origin.identifiers) { %>
    <tr>
      <td data-label="Identifier"><%= i.type %>:<%= i.value %></td>
      <td data-label="Challenge"><%= i.challenge %></td>
      <td data-label="Validated at"><time datetime="<%= i.validatedAt %>"><%= it.when(i.validatedAt) %></time></td>
    </tr>
<% } %>
  </tbody>
</table>
</section>
<% } %>
`;
