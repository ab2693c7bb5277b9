// autodata review: keyboard shortcuts. Small on purpose; the pages work without it.
(function () {
  "use strict";
  function q(sel) { return document.querySelector(sel); }
  function follow(sel) { var a = q(sel); if (a) { window.location.href = a.getAttribute("href"); } }
  function typing(el) { return el && el.closest && el.closest("input, textarea, select, [contenteditable]"); }

  var rows = Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
  var current = rows.length ? 0 : -1;
  function select(i) {
    if (!rows.length) { return; }
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach(function (r, j) { r.classList.toggle("selected", j === current); });
    rows[current].scrollIntoView({ block: "nearest" });
  }
  if (rows.length) { select(0); }
  rows.forEach(function (r, j) {
    r.addEventListener("click", function (e) {
      if (e.target.closest("a")) { return; }
      select(j);
      window.location.href = r.getAttribute("data-href");
    });
  });

  var help = q("#help");
  var helpButton = q("[data-help-toggle]");
  if (helpButton && help) { helpButton.addEventListener("click", function () { help.hidden = !help.hidden; }); }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (typing(e.target)) {
      if (e.key === "Escape") { e.target.blur(); }
      return;
    }
    var form;
    switch (e.key) {
      case "j":
        if (rows.length) { select(current + 1); } else { follow("a[data-nav=next]"); }
        break;
      case "k":
        if (rows.length) { select(current - 1); } else { follow("a[data-nav=prev]"); }
        break;
      case "Enter":
      case "o":
        if (rows.length && current >= 0) { window.location.href = rows[current].getAttribute("data-href"); }
        else { return; }
        break;
      case "u":
        follow("a[data-nav=up]");
        break;
      case "a":
        form = q("form[data-action=approve]");
        if (form) { form.requestSubmit(); }
        break;
      case "r":
        var reason = q("[data-reject-reason]");
        if (reason) { reason.focus(); }
        break;
      case "n":
        var note = q("[data-note]");
        if (note) { note.focus(); }
        break;
      case "e":
        var edit = q("details#edit");
        if (edit) { edit.open = true; var first = edit.querySelector("textarea"); if (first) { first.focus(); } }
        break;
      case "?":
        if (help) { help.hidden = !help.hidden; }
        break;
      default:
        return;
    }
    e.preventDefault();
  });
})();
