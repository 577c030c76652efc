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
