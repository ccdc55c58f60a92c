// The page around every console page (docs/console.md): landmarks (header, nav, main), a skip link,
// and the only two assets, both served by the console itself (no CDN, no web fonts). htmx is told
// not to inject its indicator <style> (the CSP allows no inline style) and never to evaluate code.
export const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"historyCacheSize":0}'>
<title><%= it.title %> · tca console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/console.css">
<script src="/ui/assets/htmx.min.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <p class="brand"><a href="/ui/">tca console</a></p>
<% if (it.reader) { %>
  <nav aria-label="Console">
    <ul>
<% for (const n of it.nav) { %>
      <li><a href="<%= n.href %>"<%~ n.current ? ' aria-current="page"' : '' %>><%= n.label %></a></li>
<% } %>
    </ul>
  </nav>
  <form class="session" method="post" action="/ui/logout">
    <p>Signed in as <%= it.reader.kind %> <strong><%= it.reader.name %></strong></p>
    <button type="submit">Log out</button>
  </form>
<% } %>
</header>
<main id="main" tabindex="-1">
<%~ it.body %>
</main>
<footer class="bottom"><p>Read-only view of this certificate authority. Nothing here changes it.</p></footer>
</body>
</html>
`;
