// The worklist's filter form: the server filters, sorts and pages the whole list (the form and
// the column links work without this script). With it, a changed filter applies at once, and a
// personnummer typed into the text filter is sent as its date part only (ÅÅÅÅMMDD, or ÅÅMMDD of
// a 10-digit number): the number itself never reaches an address, a log or the history.
"use strict";

(function () {
  const filters = document.getElementById("filters");
  if (!filters) {
    return;
  }
  const text = document.getElementById("f-text");

  function dateOnly() {
    const digits = text.value.trim().replace(/[-+ _]/g, "");
    if (/^\d+$/.test(digits) && digits.length > 8) {
      text.value = digits.length === 10 ? digits.slice(0, 6) : digits.slice(0, 8);
    }
  }

  filters.addEventListener("submit", dateOnly);
  filters.querySelectorAll("select, input[type=checkbox]").forEach(function (input) {
    input.addEventListener("change", function () {
      filters.requestSubmit();
    });
  });
})();
