/* Starts ReDoc on /api/redoc/ (templates/drf_spectacular/redoc.html): a static file, not the inline script of
   drf-spectacular's template, which the Content-Security-Policy refuses. ReDoc's styled-components write <style>
   elements at run time; they carry the nonce this script tag was given, the one the page's policy allows. */
(function () {
  "use strict";
  var nonce = document.currentScript ? document.currentScript.nonce : "";
  var container = document.getElementById("redoc-container");
  var settings = container.getAttribute("data-settings");
  var options = settings ? JSON.parse(settings) : {};
  if (nonce) options.nonce = nonce;
  window.Redoc.init(container.getAttribute("data-spec-url"), options, container);
})();
