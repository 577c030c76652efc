// Loa Phường — small behaviours of every page, driven by data attributes (no inline script: the panel's
// Content-Security-Policy allows scripts from this origin only; broadcaster/web/security.py).
//   <select data-autosubmit>, <input data-autosubmit>: submit the form on change
//   <form data-confirm="question">: ask before submitting; "Cancel" keeps the page as it is
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.form && el.hasAttribute && el.hasAttribute("data-autosubmit")) { el.form.submit(); }
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form && form.hasAttribute && form.hasAttribute("data-confirm") && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  });
})();
