// Announcement pages (announcement_detail.html). While speech is produced in the background, ask the panel
// how far it is about once a second (GET /announcements/<id>/status), move the <progress> bar and say it in
// the aria-live status line; when it is done (audio ready, or failed) reload the page, which then shows the
// player or the reason and "Thử lại". Texts come from data-text-* attributes (translated by the template).
(function () {
  "use strict";
  var box = document.querySelector("[data-render-status]");
  if (!box || !window.fetch) { return; }
  var bar = box.querySelector("progress"), line = box.querySelector("[data-render-text]");
  var url = box.getAttribute("data-render-status"), misses = 0;
  function say(percent) {
    if (bar) { bar.value = percent; bar.textContent = percent + "%"; }
    if (line) { line.textContent = box.dataset.textRendering.replace("{percent}", percent); }
  }
  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (st) {
        misses = 0;
        if (st.state === "rendering") { say(st.progress || 0); window.setTimeout(poll, 800); return; }
        if (st.state === "ready") { say(100); }
        else if (line) { line.textContent = st.error || box.dataset.textFailed; }
        window.location.reload();
      })
      .catch(function () { misses += 1; window.setTimeout(poll, Math.min(10000, 1000 * misses)); });
  }
  window.setTimeout(poll, 500);
})();

// New announcement (announcement_new.html): "Xem trước" shows what the loudspeaker will say right on the page.
// The button's own form POST (to /announcements/preview) would leave a POST result in the history, and Back after
// "Lưu và tạo giọng đọc" would then show Chromium's "resend the form" error; so with JavaScript the text is sent
// with fetch (the form's CSRF token goes with it; Accept: application/json) and the answer fills the box in place.
// If that fails (offline, logged out, an old page), the button does what it does without JavaScript.
(function () {
  "use strict";
  var button = document.querySelector("[data-preview-button]");
  var box = document.querySelector("[data-preview-box]");
  if (!button || !box || !window.fetch || !window.FormData) { return; }
  var form = button.form;
  function show(preview) {
    box.textContent = "";
    if (preview) {
      var spoken = document.createElement("div"), title = document.createElement("h3"), text = document.createElement("p");
      spoken.className = "spoken";
      spoken.id = "preview";
      title.textContent = box.dataset.textTitle;
      text.textContent = preview;
      text.setAttribute("data-preview", "");
      spoken.appendChild(title);
      spoken.appendChild(text);
      box.appendChild(spoken);
    } else {
      var warn = document.createElement("p");
      warn.className = "flash warn";
      warn.textContent = box.dataset.textEmpty;
      box.appendChild(warn);
    }
  }
  button.addEventListener("click", function (e) {
    if (button.dataset.nojs === "1") { return; }  // the fallback: let the form post as without JavaScript
    e.preventDefault();
    if (button.getAttribute("aria-busy") === "true") { return; }
    var data = new FormData(form);
    data.delete("form_key");  // a preview creates nothing: the one-time key stays for "Lưu"
    button.setAttribute("aria-busy", "true");
    fetch(button.formAction, {method: "POST", body: data, credentials: "same-origin",
                              headers: {"Accept": "application/json"}})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        if (!r.ok || type.indexOf("application/json") !== 0) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(function (answer) {
        button.removeAttribute("aria-busy");
        show(answer.preview || "");
        box.scrollIntoView({block: "nearest"});
      })
      .catch(function () {
        button.removeAttribute("aria-busy");
        button.dataset.nojs = "1";
        button.click();
      });
  });
})();
