// The emergency page (emergency.html): live / drill switch, "all zones" disables the zone boxes, and a
// confirmation worded for a live alert or a drill (data-confirm-live / data-confirm-drill of #em-form).
(function () {
  "use strict";
  var form = document.getElementById("em-form"), send = document.getElementById("em-send");
  function drill() { var r = form.querySelector("input[name=mode]:checked"); return r && r.value === "drill"; }
  function sync() {
    var d = drill();
    form.classList.toggle("is-drill", d);
    send.textContent = d ? form.dataset.sendDrill : form.dataset.sendLive;
    var all = document.getElementById("em-all").checked;
    form.querySelectorAll(".em-zone").forEach(function (c) { c.disabled = all; });
  }
  if (!form) { return; }
  form.addEventListener("change", sync);
  form.addEventListener("submit", function (e) {
    if (!window.confirm(drill() ? form.dataset.confirmDrill : form.dataset.confirmLive)) { e.preventDefault(); }
  });
  sync();
})();
