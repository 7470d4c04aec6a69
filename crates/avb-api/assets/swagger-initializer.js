// Starts Swagger UI on this server's own OpenAPI document. Everything is served locally: no CDN, no online
// validator badge (validatorUrl: null), so the page works offline.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    persistAuthorization: false,
  });
});
