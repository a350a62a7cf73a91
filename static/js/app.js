/* leadmgmt UI behaviour, small and dependency-free (htmx is vendored separately).

   - Live SLA countdowns: any <span class="countdown" data-due="ISO-8601"> shows the time left (or "overdue by …"
     with the .overdue class once the due time has passed); re-bound after htmx swaps.
   - Announcements: after an htmx swap, the text of the new content's first [data-announce] element is read out
     through the polite live region #live-status in base.html (a swapped-in region is not announced by itself);
     a swapped table row takes the keyboard focus its old control had.
   - Refusals in place: a 400 answer to a request from an element marked data-swap-invalid (e.g. a row's
     reassign control) is swapped like a success, so the field error shows beside the control.
   - Failures: any other htmx error (403 after a lost session or CSRF token, 5xx, network) shows a message
     at the top of the page instead of failing silently. */
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

  function announce(text) {
    var region = document.getElementById("live-status");
    if (!region || !text) return;
    region.textContent = "";
    // a fresh text node after clearing makes screen readers read a repeated message again
    window.setTimeout(function () { region.textContent = text.replace(/\s+/g, " ").trim(); }, 50);
  }

  function showError(message) {
    var main = document.getElementById("content");
    if (!main) return;
    var list = main.querySelector(":scope > .messages");
    if (!list) {
      list = document.createElement("ul");
      list.className = "messages";
      list.setAttribute("role", "status");
      main.insertBefore(list, main.firstChild);
    }
    var item = document.createElement("li");
    item.className = "message message-error";
    item.textContent = message;
    list.appendChild(item);
    announce(message);
  }

  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
  setInterval(tick, 1000);

  document.addEventListener("htmx:load", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (!el || el === document.body || !el.querySelector) return;
    var source = el.matches("[data-announce]") ? el : el.querySelector("[data-announce]");
    if (source) announce(source.textContent);
    // a swapped row replaced the control that had focus: keep the keyboard user in that row
    if (el.tagName === "TR" && refocusRow && el.getAttribute("data-lead-id") === refocusRow) {
      refocusRow = null;
      var control = el.querySelector("select") || el.querySelector("button") || el.querySelector("a[href]");
      if (control) control.focus({ preventScroll: true });
    }
  });

  var refocusRow = null;
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    refocusRow = target && target.tagName === "TR" && target.contains(document.activeElement)
      ? target.getAttribute("data-lead-id") : null;
    var source = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    if (evt.detail.xhr.status === 400 && source && source.closest && source.closest("[data-swap-invalid]")) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  document.addEventListener("htmx:responseError", function (evt) {
    var status = evt.detail.xhr.status;
    showError(status === 403
      ? "That action was refused (403): your session may have expired. Reload the page and try again."
      : "Something went wrong (error " + status + "). Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    showError("The server could not be reached. Check your connection and try again.");
  });
})();
