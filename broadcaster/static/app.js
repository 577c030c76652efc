// Loa Phường — small behaviours of every page, driven by data attributes (no inline script: the panel's
// Content-Security-Policy allows scripts from this origin only; broadcaster/web/security.py).
//   <select data-autosubmit>, <input data-autosubmit>: submit the form on change
//   <form data-confirm="question">: ask before submitting; "Cancel" keeps the page as it is
//   every form: once sent, its buttons say so and a second tap does nothing (the server also refuses to do a
//   form twice: broadcaster/web/idempotency.py); coming back to the page (back button) frees them again
//   <button data-menu-toggle aria-controls="id">: opens and closes the menu on a phone
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.form && el.hasAttribute && el.hasAttribute("data-autosubmit")) { el.form.submit(); }
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || !form.hasAttribute) { return; }
    if (form.hasAttribute("data-confirm") && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      return;
    }
    if (form.method.toLowerCase() !== "post") { return; }
    if (form.dataset.sending === "1") { e.preventDefault(); return; }
    form.dataset.sending = "1";
    form.setAttribute("aria-busy", "true");
    var used = e.submitter;
    if (used && used.tagName === "BUTTON") {
      used.dataset.label = used.textContent;
      used.classList.add("is-sending");
    }
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-sending]").forEach(function (form) {
      delete form.dataset.sending;
      form.removeAttribute("aria-busy");
      form.querySelectorAll(".is-sending").forEach(function (b) { b.classList.remove("is-sending"); });
    });
  });
  document.addEventListener("click", function (e) {
    var toggle = e.target.closest ? e.target.closest("[data-menu-toggle]") : null;
    if (!toggle) { return; }
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (menu) { menu.classList.toggle("is-open", open); }
  });
})();
