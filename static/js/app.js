/* leadmgmt UI behaviour, small and dependency-free (htmx is vendored separately).

   - Live SLA countdowns: any <span class="countdown" data-due="ISO-8601"> shows the time left (or "overdue by …"
     with the .overdue class once the due time has passed); re-bound after htmx swaps.
   - Announcements: after an htmx swap, the text of the new content's first [data-announce] element is read out
     through the polite live region #live-status in base.html (a swapped-in region is not announced by itself);
     a swapped table row takes the keyboard focus its old control had.
   - Refusals in place: a 400 answer to a request from an element marked data-swap-invalid (e.g. a row's
     reassign control) is swapped like a success, so the field error shows beside the control.
   - Failures: any other htmx error (403 after a lost session or CSRF token, 5xx, network) shows a message
     at the top of the page instead of failing silently (a live poll's failure stays quiet: the next one retries).
   - Live regions: [data-live-poll] elements (templates/workspace/_live_poll.html, the top bar's bell) GET their
     partial every LIVE_POLL_SECONDS; pollReady cancels a poll (htmx:confirm) while the page is hidden, a request of
     the user is in flight, they are typing, an inline form in the region holds a choice, or they worked in the region
     a moment ago. (Not an hx-trigger filter: htmx evaluates those with eval, which the Content-Security-Policy
     refuses; base.html sets allowEval off.) An answer that changed nothing (countdowns and "… ago" aside) or that
     is not the page asked for (a sign-in redirect) is not swapped; a swap keeps the keyboard focus on the same
     row's control.
   - CSV export choosers ([data-export-form], templates/workspace/_export_chooser.html): on submit, the hidden filter
     fields are replaced by the current values of the page's filter form (htmx filtered the list in place). */
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

  function isPoll(elt) { return !!(elt && elt.hasAttribute && elt.hasAttribute("data-live-poll")); }

  document.addEventListener("htmx:responseError", function (evt) {
    if (isPoll(evt.detail.elt)) return;
    var status = evt.detail.xhr.status;
    showError(status === 403
      ? "That action was refused (403): your session may have expired. Reload the page and try again."
      : "Something went wrong (error " + status + "). Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function (evt) {
    if (isPoll(evt.detail.elt)) return;
    showError("The server could not be reached. Check your connection and try again.");
  });

  // --- live regions ---------------------------------------------------------------------------------------
  var RECENT_MS = 20000;
  var touched = {};  // region id -> when the user last worked in it
  var lastKey = 0;
  var pendingFocus = null;

  ["pointerdown", "keydown", "input", "change", "focusin"].forEach(function (type) {
    document.addEventListener(type, function (evt) {
      var el = evt.target;
      if (type === "keydown" || type === "input") lastKey = Date.now();
      var region = el && el.closest ? el.closest("[data-live-region]") : null;
      if (region && region.id) touched[region.id] = Date.now();
      if ((type === "input" || type === "change") && el && el.form && region) el.form.setAttribute("data-dirty", "");
    }, true);
  });

  function pollTarget(el) {
    var selector = el.getAttribute("hx-target");
    return selector ? document.querySelector(selector) : el;
  }

  function typing() {
    var a = document.activeElement;
    if (!a || a === document.body) return false;
    if (a.isContentEditable || a.tagName === "TEXTAREA") return true;
    return a.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset|hidden|range|color|file)$/i.test(a.type);
  }

  function pollReady(el) {
    if (document.hidden) return false;
    if (document.querySelector(".htmx-request:not([data-live-poll])")) return false;  // the user's own request first
    var target = pollTarget(el);
    if (!target) return false;
    if (el.hasAttribute("data-poll-light")) return !target.contains(document.activeElement);
    var now = Date.now();
    if (typing() && now - lastKey < RECENT_MS) return false;
    if (target.querySelector("form[data-dirty], details[open]")) return false;  // an unsent choice stays
    return !(target.id && now - (touched[target.id] || 0) < RECENT_MS);
  }

  // htmx asks before each request it issues; a poll that is not welcome now is dropped (the next one comes anyway).
  document.addEventListener("htmx:confirm", function (evt) {
    var el = evt.detail && evt.detail.elt;
    if (isPoll(el) && !pollReady(el)) evt.preventDefault();
  });

  function rowKey(el) {
    var row = el && el.closest ? el.closest("[data-lead-id], [data-notification-id]") : null;
    if (!row) return null;
    return row.hasAttribute("data-lead-id") ? "[data-lead-id='" + row.getAttribute("data-lead-id") + "']"
      : "[data-notification-id='" + row.getAttribute("data-notification-id") + "']";
  }

  function focusables(root) {
    return Array.prototype.slice.call(root.querySelectorAll("a[href], button, select, input:not([type=hidden]), textarea"));
  }

  function signature(root) {
    var copy = root.cloneNode(true);
    var parts = [];
    copy.querySelectorAll("[data-due]").forEach(function (n) { parts.push(n.getAttribute("data-due")); });
    copy.querySelectorAll("[data-lead-id], [data-notification-id]").forEach(function (n) {
      parts.push(n.getAttribute("data-lead-id") || n.getAttribute("data-notification-id"));
    });
    copy.querySelectorAll(".countdown, time, [data-live-poll]").forEach(function (n) { n.remove(); });
    parts.push(copy.textContent.replace(/\s+/g, " ").trim());
    return parts.join("|");
  }

  document.addEventListener("htmx:beforeSwap", function (evt) {
    var source = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    if (!isPoll(source) || !evt.detail.shouldSwap) return;
    var target = evt.detail.target;
    var xhr = evt.detail.xhr;
    var asked = new URL(evt.detail.requestConfig.path, window.location.href).pathname;
    if (xhr.responseURL && new URL(xhr.responseURL).pathname !== asked) {
      evt.detail.shouldSwap = false;  // redirected (signed out, workspace gone): leave the page as it is
      return;
    }
    var fresh = document.createElement("template");
    fresh.innerHTML = xhr.responseText;
    if (signature(target) === signature(fresh.content)) {
      evt.detail.shouldSwap = false;
      return;
    }
    var active = document.activeElement;
    var key = active && target.contains(active) ? rowKey(active) : null;
    pendingFocus = key ? { key: key, index: focusables(document.querySelector(key)).indexOf(active) } : null;
  });

  document.addEventListener("htmx:afterSwap", function () {
    if (!pendingFocus) return;
    var row = document.querySelector(pendingFocus.key);
    var control = row ? focusables(row)[Math.max(pendingFocus.index, 0)] : null;
    pendingFocus = null;
    if (control) control.focus({ preventScroll: true });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-export-form]")) return;
    var filters = document.getElementById(form.getAttribute("data-filters-form"));
    if (!filters) return;
    form.querySelectorAll("[data-filter-copy]").forEach(function (el) { el.remove(); });
    new FormData(filters).forEach(function (value, name) {
      if (name === "page" || name === "columns" || value === "") return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      input.setAttribute("data-filter-copy", "");
      form.appendChild(input);
    });
  });
})();
