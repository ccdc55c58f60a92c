// The login form: one token (an admin's or a requester's, as in ca-config). The token is sent once,
// in a same-origin POST, and never shown back.
export const login = `<% layout("@layout", it) %>
<h1>Log in</h1>
<p>Paste an admin token (sees everything) or a requester token (sees only its own certificates and requests).</p>
<% if (it.error) { %>
<p class="error" role="alert" id="login-error"><%= it.error %></p>
<% } %>
<form class="login" method="post" action="/ui/login">
  <label for="token">Token</label>
  <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required minlength="16" maxlength="512"<%~ it.error ? ' aria-describedby="login-error" aria-invalid="true"' : '' %>>
  <button type="submit">Log in</button>
</form>
`;
