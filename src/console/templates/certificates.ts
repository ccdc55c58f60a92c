// The inventory (docs/inventory.md) as a page: the filter form (a plain GET form, so it works and
// bookmarks without script) and the table fragment, which htmx re-fetches every 2 s; the fragment
// answers 204 (no swap) while the change feed has not moved.
export const certificates = `<% layout("@layout", it) %>
<h1>Certificates</h1>
<form class="filters" method="get" action="/ui/certificates" role="search" aria-label="Filter certificates">
  <div class="field">
    <label for="f-q">Name contains</label>
    <input id="f-q" name="q" type="search" value="<%= it.filters.q ?? '' %>" maxlength="256" autocomplete="off">
  </div>
  <div class="field">
    <label for="f-status">Status</label>
    <select id="f-status" name="status">
      <option value="">any</option>
<% for (const s of it.statuses) { %>
      <option value="<%= s %>"<%~ it.filters.status === s ? ' selected' : '' %>><%= s %></option>
<% } %>
    </select>
  </div>
  <div class="field">
    <label for="f-profile">Profile</label>
    <select id="f-profile" name="profile">
      <option value="">any</option>
<% for (const p of it.profiles) { %>
      <option value="<%= p %>"<%~ it.filters.profile === p ? ' selected' : '' %>><%= p %></option>
<% } %>
    </select>
  </div>
<% if (it.requesters.length > 0) { %>
  <div class="field">
    <label for="f-requester">Requester</label>
    <select id="f-requester" name="requester">
      <option value="">any</option>
<% for (const r of it.requesters) { %>
      <option value="<%= r %>"<%~ it.filters.requester === r ? ' selected' : '' %>><%= r %></option>
<% } %>
    </select>
  </div>
<% } %>
  <div class="field">
    <label for="f-expires">Expiring before</label>
    <input id="f-expires" name="expiresBefore" type="date" value="<%= it.filters.expiresBeforeDate ?? '' %>">
  </div>
  <div class="field">
    <label for="f-sort">Order</label>
    <select id="f-sort" name="sort">
<% for (const s of it.sorts) { %>
      <option value="<%= s.value %>"<%~ (it.filters.sort ?? '-issued') === s.value ? ' selected' : '' %>><%= s.label %></option>
<% } %>
    </select>
  </div>
  <div class="actions">
    <button type="submit">Apply</button>
    <a href="/ui/certificates">Clear filters</a>
  </div>
</form>
<%~ include("@certificateTable", it) %>
`;

export const certificateTable = `<section id="inventory" aria-labelledby="inventory-heading" hx-get="<%= it.pollUrl %>" hx-trigger="every 2s" hx-swap="outerHTML">
<h2 id="inventory-heading" class="count"><%= it.rows.length %><%= it.next ? '+' : '' %> certificate<%= it.rows.length === 1 ? '' : 's' %></h2>
<% if (it.rows.length === 0) { %>
<p>No certificate matches.</p>
<% } else { %>
<table class="cards">
  <thead>
    <tr>
      <th scope="col">Serial</th>
      <th scope="col">Names</th>
      <th scope="col">Profile</th>
<% if (it.showRequester) { %>
      <th scope="col">Requester</th>
<% } %>
      <th scope="col">Expires</th>
      <th scope="col">Status</th>
    </tr>
  </thead>
  <tbody>
<% for (const c of it.rows) { %>
    <tr>
      <td data-label="Serial"><a class="mono" href="/ui/requests/<%= c.requestId %>"><%= c.serial %></a></td>
      <td data-label="Names"><%= c.names %></td>
      <td data-label="Profile"><%= c.profile %></td>
<% if (it.showRequester) { %>
      <td data-label="Requester"><%= c.requester %></td>
<% } %>
      <td data-label="Expires"><time datetime="<%= c.notAfter %>"><%= c.notAfterText %></time></td>
      <td data-label="Status"><span class="status status-<%= c.status %>"><%= c.status %></span><% if (c.revokedText) { %> <span class="detail"><%= c.revokedText %></span><% } %></td>
    </tr>
<% } %>
  </tbody>
</table>
<% } %>
<% if (it.next) { %>
<p><a href="<%= it.nextUrl %>">Next page</a></p>
<% } %>
</section>
`;
