/* The lead form admin page (templates/admin/leads/leadform/change_form.html): the "Copy snippet" button copies
   the generated HTML snippet with the clipboard API, falling back to selecting the text (and execCommand) where
   the page is not a secure context. A static file, not an inline script: the Content-Security-Policy. */
(function () {
  "use strict";
  function bind() {
    document.querySelectorAll("[data-copy-snippet]").forEach(function (button) {
      var source = document.getElementById(button.getAttribute("data-copy-snippet"));
      var status = button.parentNode.querySelector("[data-copy-status]");
      function say(text) { if (status) { status.textContent = text; } }
      function fallback() {
        source.focus();
        source.select();
        var copied = false;
        try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
        say(copied ? "Copied." : "Press Ctrl+C (⌘C on a Mac) to copy the selected snippet.");
      }
      button.addEventListener("click", function () {
        if (!source) { return; }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(source.value).then(function () { say("Copied."); }, fallback);
        } else {
          fallback();
        }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
