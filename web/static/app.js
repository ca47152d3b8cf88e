// The admin UI's own script: copy buttons. Everything else is plain HTML forms, improved
// by htmx where it is loaded; pages work without JavaScript.
"use strict";
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.getAttribute("data-copy"));
  if (!el || !navigator.clipboard) return;
  navigator.clipboard.writeText(el.textContent.trim()).then(function () {
    var old = b.textContent;
    b.textContent = "Copied";
    setTimeout(function () { b.textContent = old; }, 1500);
  });
});
// Forms and buttons with data-confirm ask before a destructive action (also without htmx).
document.addEventListener("submit", function (e) {
  var f = e.target;
  var msg = f.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
}, true);
// Live events: the list keeps its newest rows only, however long the page stays open.
document.addEventListener("htmx:sseMessage", function (e) {
  var body = document.getElementById("live-events");
  if (!body || e.target !== body) return;
  while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
});
