/* The scoring rule editor (admin): each rule's value shows only the inputs its operator needs — a text,
   a list (one entry per line) or a minimum and maximum — and none for operators that take no value.
   Hidden inputs are disabled, so they are not posted; the server turns the posted inputs into the rule's
   stored value and answers bad input with a message on the field. Works for rows added with "Add another". */
(function () {
  "use strict";
  var PARTS = {
    equals: ["text"], contains: ["text"], regex: ["text"],
    in_list: ["items"], keywords: ["items"],
    range: ["min", "max"],
    is_true: [], not_blank: [], signal: []
  };

  function operatorOf(valueBox) {
    var row = valueBox.closest(".inline-related, tr, .form-row");
    while (row && !row.querySelector("select[name$='-operator']")) {
      row = row.parentElement && row.parentElement.closest(".inline-related, tr, fieldset");
    }
    return row ? row.querySelector("select[name$='-operator']") : null;
  }

  function sync(valueBox) {
    var select = operatorOf(valueBox);
    if (!select) { return; }
    var wanted = PARTS[select.value];
    var inputs = valueBox.querySelectorAll("[data-value-part]");
    for (var i = 0; i < inputs.length; i++) {
      var show = !wanted || wanted.indexOf(inputs[i].getAttribute("data-value-part")) !== -1;
      inputs[i].hidden = !show;
      inputs[i].disabled = !show;
    }
    var none = valueBox.querySelector(".rule-value-none");
    if (none) { none.hidden = !(wanted && wanted.length === 0); }
  }

  function syncAll(root) {
    var boxes = (root || document).querySelectorAll("[data-rule-value]");
    for (var i = 0; i < boxes.length; i++) { sync(boxes[i]); }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("select[name$='-operator']")) {
      var container = target.closest(".inline-related, tr") || document;
      syncAll(container);
    }
  });
  document.addEventListener("formset:added", function (event) { syncAll(event.target); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { syncAll(); });
  } else {
    syncAll();
  }
})();
