// An emergency's page (emergency_detail.html): the delivery status (#em-status, data-url) refreshes every second.
(function () {
  "use strict";
  var box = document.getElementById("em-status");
  if (!box) { return; }
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) { box.innerHTML = html; } })
      .catch(function () {}).then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
