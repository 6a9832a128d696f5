// The worklist: sort by a column (the headers are buttons) and filter the rows in place.
// The server already sends the list sorted (overdue first, then by due date) and complete,
// so without this script everything still works; the filters only appear with it.
"use strict";

(function () {
  const table = document.getElementById("worklist");
  const filters = document.getElementById("filters");
  const shown = document.getElementById("shown");
  if (!table || !filters) {
    return;
  }
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const text = document.getElementById("f-text");
  const plan = document.getElementById("f-plan");
  const overdue = document.getElementById("f-overdue");
  const withTasks = document.getElementById("f-tasks");

  function value(row, key, type) {
    const raw = row.dataset[key] || "";
    return type === "number" ? parseFloat(raw) || 0 : raw.toLocaleLowerCase("sv");
  }

  function sortBy(header, key, type) {
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    const collator = new Intl.Collator("sv");
    rows.sort(function (a, b) {
      const x = value(a, key, type);
      const y = value(b, key, type);
      const order = type === "number" ? x - y : collator.compare(x, y);
      return ascending ? order : -order;
    });
    table.querySelectorAll("thead th").forEach(function (th) {
      th.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.forEach(function (row) {
      body.appendChild(row);
    });
  }

  table.querySelectorAll("thead th button").forEach(function (button) {
    button.addEventListener("click", function () {
      sortBy(button.closest("th"), button.dataset.key, button.dataset.type);
    });
  });

  function applyFilters() {
    let needle = text.value.trim().toLocaleLowerCase("sv");
    // The page carries each patient's birth date, never the full personnummer: a number typed
    // in full is matched on its date part (ÅÅÅÅMMDD, or ÅÅMMDD of a 10-digit one).
    const digits = needle.replace(/[-+ _]/g, "");
    if (/^\d+$/.test(digits)) {
      needle = digits.length === 10 ? digits.slice(0, 6) : digits.slice(0, 8);
    }
    let count = 0;
    rows.forEach(function (row) {
      const haystack = (row.dataset.name.toLocaleLowerCase("sv") + " " + row.dataset.born);
      const visible =
        (!needle || haystack.includes(needle)) &&
        (!plan.value || row.dataset.plan === plan.value) &&
        (!overdue.checked || row.dataset.overdue === "1") &&
        (!withTasks.checked || row.dataset.tasks !== "0");
      row.hidden = !visible;
      if (visible) {
        count += 1;
      }
    });
    shown.textContent = "Visar " + count + " av " + rows.length + " patienter.";
  }

  [text, plan, overdue, withTasks].forEach(function (input) {
    input.addEventListener("input", applyFilters);
    input.addEventListener("change", applyFilters);
  });
  filters.addEventListener("submit", function (event) {
    event.preventDefault();
  });
  filters.hidden = false;
  applyFilters();
})();
