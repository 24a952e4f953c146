// Starts Swagger UI on the node's API docs page (/docs, node/docs.py). A file of its own
// rather than an inline script, so the page works under Content-Security-Policy
// script-src 'self'. What it needs comes from data- attributes of #swagger-ui.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var data = root.dataset;
  var config = {
    url: data.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // Never send the schema's address to validator.swagger.io (its badge would).
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
  };
  if (data.csrfCookie && data.csrfHeader) {
    // "Try it out" sends the CSRF token the way the node's CSRF protection expects it.
    config.requestInterceptor = function (request) {
      var prefix = data.csrfCookie + "=";
      var cookie = document.cookie.split("; ").find(function (row) {
        return row.indexOf(prefix) === 0;
      });
      if (cookie !== undefined) {
        request.headers[data.csrfHeader] = decodeURIComponent(cookie.slice(prefix.length));
      }
      return request;
    };
  }
  window.ui = window.SwaggerUIBundle(config);
})();
