// Any refusal or failure, as a page: the status and one sentence (never an internal cause).
export const error = `<% layout("@layout", it) %>
<h1><%= it.title %></h1>
<p class="error" role="alert"><%= it.message %></p>
<p><a href="/ui/certificates">Back to the certificates</a></p>
`;
