// A page whose module cannot load (most often: the client bundle was never built) says so
// instead of staying blank. A classic script, loaded before the page's module, by the
// server's pages and the demo pages alike: <script type="module" onerror="loadFailed()">.
function loadFailed() {
  const status = document.getElementById('status');
  status.dataset.status = 'closed';
  status.textContent = 'Not loaded';
  document.getElementById('toasts').innerHTML = '<div class="banner" role="alert"><span>This page could not load its scripts. Is <code>/_atrium/atrium-client.mjs</code> built? Run <code>cd clients/js &amp;&amp; npm ci &amp;&amp; npm run build</code>.</span></div>';
}
