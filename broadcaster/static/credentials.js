// Node credentials (node_credentials.html): <button data-copy="id"> copies the text of element #id with the
// Clipboard API; where that is refused (an old phone, a page not served over HTTPS) the text is selected so the
// phone's own copy command takes it. #copy-status (aria-live) says which happened. The configuration file form
// (form[data-download]) answers with a download, not a new page: it is freed again for a second download.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");

  function say(text) {
    if (!status) { return; }
    status.textContent = "";
    window.setTimeout(function () { status.textContent = text; }, 30);
  }

  function select(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  function fallback(el, label) {
    select(el);
    var done = false;
    try { done = document.execCommand("copy"); } catch (err) { done = false; }
    say(done ? status.dataset.done + ": " + label : status.dataset.manual);
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var el = document.getElementById(button.dataset.copy);
    if (!el) { return; }
    var label = (document.getElementById(button.dataset.copy + "-label") || {}).textContent || "";
    var text = el.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        say(status.dataset.done + ": " + label);
        button.classList.add("is-copied");
      }, function () { fallback(el, label); });
    } else {
      fallback(el, label);
    }
  });

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-download")) { return; }
    window.setTimeout(function () {
      delete form.dataset.sending;
      form.removeAttribute("aria-busy");
      form.querySelectorAll(".is-sending").forEach(function (b) { b.classList.remove("is-sending"); });
    }, 1500);
  });
})();
