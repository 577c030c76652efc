// The reports page (reports.html): <button data-print> prints it (the print view hides the menu and the forms
// and opens the charts' tables: static/reports.css); before printing every <details> is opened.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-print]") : null;
    if (button) { window.print(); }
  });
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll(".chart details").forEach(function (d) { d.open = true; });
  });
})();
