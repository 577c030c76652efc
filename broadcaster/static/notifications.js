// Loa Phường — the notification centre on every page (no inline script: the CSP allows this origin only).
// Every 15 s (data-poll-ms of the header link) it asks /notifications/count: the badge shows the unread count
// (and the link's accessible name says it), and an emergency broadcast that waits for this person to confirm
// shows as a banner (role="alert") at the top of the page, with the link to confirm it.
(function () {
  "use strict";
  var link = document.getElementById("notify-link");
  if (!link || !window.fetch) { return; }
  var url = link.dataset.countUrl;
  var every = parseInt(link.dataset.pollMs, 10) || 15000;
  var shown = "";

  function render(data) {
    var badge = link.querySelector(".notify-badge");
    var sr = link.querySelector(".notify-sr");
    var n = data.unread || 0;
    if (badge) { badge.textContent = String(n); badge.hidden = n === 0; }
    if (sr) { sr.textContent = n ? " " + (link.dataset.unreadWord || "") : ""; }
    var waiting = (data.emergencies || []).filter(function (e) { return e.target !== window.location.pathname; });
    var key = waiting.map(function (e) { return e.id; }).join(",");
    if (key === shown) { return; }
    shown = key;
    var old = document.getElementById("notify-banner");
    if (old) { old.remove(); }
    if (!waiting.length) { return; }
    var main = document.querySelector("main");
    if (!main) { return; }
    var box = document.createElement("div");
    box.id = "notify-banner";
    box.className = "notify-banner";
    box.setAttribute("role", "alert");
    var title = document.createElement("strong");
    title.textContent = link.dataset.bannerTitle || "";
    box.appendChild(title);
    waiting.forEach(function (e) {
      var p = document.createElement("p");
      p.textContent = e.text;
      box.appendChild(p);
      var a = document.createElement("a");
      a.href = e.link;
      a.textContent = e.action;
      box.appendChild(a);
    });
    main.insertBefore(box, main.firstChild);
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        var type = r.headers.get("Content-Type") || "";
        return r.ok && type.indexOf("json") >= 0 ? r.json() : null;
      })
      .then(function (data) { if (data) { render(data); } })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }

  poll();
  window.setInterval(function () { if (!document.hidden) { poll(); } }, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) { poll(); } });
})();
