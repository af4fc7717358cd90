/* reference.js: configures the Scalar API reference at / (index.html) for Looped's API.
 *
 * Nothing may leave this server: no web fonts (withDefaultFonts), no telemetry, no AI agent or
 * MCP panels (they talk to Scalar's services), no developer toolbar (it links to Scalar's
 * dashboard), and no request proxy (proxyUrl stays unset, so "Test request" goes straight to
 * this server: the only one in the document's `servers`). The API-key scheme is preselected,
 * so the Authentication panel asks for X-API-Key at once; the key is never stored. */
(function () {
  "use strict";

  var root = document.getElementById("reference");
  if (!window.Scalar || typeof window.Scalar.createApiReference !== "function") {
    root.innerHTML = "<h1>Looped API</h1><p>The API reference script is missing on this server " +
      "(run <code>deploy/scalar/vendor</code>). The OpenAPI document is at " +
      "<a href=\"/openapi.json\"><code>/openapi.json</code></a>.</p>";
    return;
  }
  window.Scalar.createApiReference(root, {
    url: "/openapi.json",
    withDefaultFonts: false,
    telemetry: false,
    agent: { disabled: true },
    mcp: { disabled: true },
    showDeveloperTools: "never",
    hideClientButton: true,
    persistAuth: false,
    documentDownloadType: "json",
    hideModels: false,
    operationTitleSource: "summary",
    authentication: {
      // components.securitySchemes.ApiKey: `X-API-Key: looped_...`
      preferredSecurityScheme: "ApiKey"
    }
  });
})();
