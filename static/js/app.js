/* leadmgmt UI: live SLA countdowns. Any <span class="countdown" data-due="ISO-8601"> shows the time left
   (or "overdue by …" with the .overdue class once the due time has passed); re-bound after htmx swaps. */
(function () {
  "use strict";
  function fmt(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m";
    return m + "m " + String(sec).padStart(2, "0") + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) return;
      var left = due - now;
      if (left <= 0) {
        el.textContent = "overdue by " + fmt(left);
        el.classList.add("overdue");
      } else {
        el.textContent = fmt(left) + " left";
        el.classList.remove("overdue");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
  setInterval(tick, 1000);
})();
